"""The gobind command: serve a WSGI app, an ASGI app or a gobind.Server.

    gobind myproject.wsgi:application --host 0.0.0.0 --port 8000 --threads 8
    gobind myproject.main:app --lifespan on          # FastAPI, Starlette
    python -m gobind myproject.wsgi:application

Every option can also come from an environment variable named GOBIND_ and
the option name in upper case with '_' for '-' (GOBIND_PORT=8000). A
command-line option wins over its variable.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import logging.config
import os
import platform
import signal
import socket
import sys
from typing import Any, List, Optional, Sequence, Tuple

from ._gobind import Headers
from ._server import _exit_if_held, _listen_address, _wait_for_threads

ENV_PREFIX = "GOBIND_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
INTERFACES = ("auto", "wsgi", "asgi", "gobind")
LIFESPAN_MODES = ("auto", "on", "off")
LOOPS = ("auto", "asyncio", "uvloop")

logger = logging.getLogger("gobind")


class UsageError(Exception):
    """A mistake in the command line or the app it names: reported as one
    line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gobind",
        description="Serve a WSGI or ASGI application, or a gobind.Server, with Go's net/http engine.",
        epilog="Every option also reads GOBIND_<OPTION> from the environment, such as GOBIND_PORT=9000 "
        "or GOBIND_ACCESS_LOG=false; GOBIND_HEADER takes one NAME:VALUE per line.",
    )
    parser.add_argument(
        "app",
        metavar="APP",
        nargs="?",
        help="the application as MODULE:ATTRIBUTE, such as myproject.wsgi:application",
    )
    parser.add_argument("--factory", action="store_true", default=False,
                        help="call APP with no arguments to get the application (default: off)")
    parser.add_argument("--app-dir", default=".", metavar="DIR",
                        help="directory put first on sys.path before APP is imported (default: %(default)s)")
    parser.add_argument("--interface", choices=INTERFACES, default="auto",
                        help="how to serve APP: wsgi for a WSGI callable, asgi for an ASGI 3 app, "
                        "gobind for a gobind.Server, auto to detect (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind; 0.0.0.0 for every IPv4 interface, :: for every interface (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000,
                        help="TCP port to bind, 0 for any free port (default: %(default)s)")
    parser.add_argument("--uds", metavar="PATH", default=None,
                        help="bind a Unix domain socket at PATH instead of --host and --port "
                        "(default: none)")
    parser.add_argument("--fd", type=int, default=None, metavar="N",
                        help="serve the listening socket inherited as descriptor N, such as from "
                        "systemd, instead of binding --host, --port or --uds (default: none)")
    parser.add_argument("--workers", type=int, default=1, metavar="COUNT",
                        help="worker processes, each with its own interpreter, sharing one listening "
                        "socket; above 1, a supervisor process replaces workers that exit "
                        "(default: %(default)s)")
    # The descriptor of a worker's link to its supervisor (gobind._supervisor).
    parser.add_argument("--supervisor-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1,
                        help="how many requests run the app at once; more wait in Go (default: %(default)s)")
    parser.add_argument("--limit-concurrency", type=int, default=0, metavar="COUNT",
                        help="ASGI apps: how many requests run in the app at once; more wait in Go "
                        "(uvicorn answers 503 instead); 0 for no limit (default: %(default)s)")
    parser.add_argument("--lifespan", choices=LIFESPAN_MODES, default="auto",
                        help="ASGI lifespan events: on (a failed startup exits with status 3), off, or "
                        "auto to run them when the app supports them (default: %(default)s)")
    parser.add_argument("--loop", choices=LOOPS, default="auto",
                        help="event loop of an ASGI app: auto picks uvloop when installed, else asyncio "
                        "(default: %(default)s)")
    parser.add_argument("--root-path", default="", metavar="PATH",
                        help="mount prefix such as /api: SCRIPT_NAME of every request, removed from "
                        "PATH_INFO (default: none)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                        help="level of the gobind loggers (default: %(default)s, or the level that "
                        "--log-config sets)")
    parser.add_argument("--log-config", metavar="FILE", default=None,
                        help="logging configuration: a .json file for logging.config.dictConfig, "
                        "any other file for logging.config.fileConfig (default: none)")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="log one line per request to the gobind.access logger (default: on)")
    parser.add_argument("--timeout-keep-alive", type=float, default=75.0, metavar="SECONDS",
                        help="how long an idle keep-alive connection stays open, in seconds; "
                        "0 selects the default (default: %(default)s)")
    parser.add_argument("--timeout-read-header", type=float, default=10.0, metavar="SECONDS",
                        help="how long a client may take to send the request line and headers, in "
                        "seconds; the connection then closes; 0 selects the default (default: %(default)s)")
    parser.add_argument("--timeout-read", type=float, default=60.0, metavar="SECONDS",
                        help="how long each read of a request body may wait for the client, in "
                        "seconds; the app then gets a read error; 0 selects the default (default: %(default)s)")
    parser.add_argument("--timeout-write", type=float, default=60.0, metavar="SECONDS",
                        help="how long a response write may wait for a client that reads nothing, in "
                        "seconds; the connection then closes; 0 selects the default (default: %(default)s)")
    parser.add_argument("--timeout-graceful-shutdown", type=float, default=30.0, metavar="SECONDS",
                        help="how long a shutdown waits for running requests before it closes their "
                        "connections, in seconds (default: %(default)s)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="response header added to every response that lacks one of that name; "
                        "repeat for more (default: none)")
    parser.add_argument("--limit-request-header-bytes", type=int, default=64 * 1024, metavar="BYTES",
                        help="maximum size of the request line and header block, in bytes; larger "
                        "requests get 431 (default: %(default)s)")
    parser.add_argument("--limit-request-body-bytes", type=int, default=0, metavar="BYTES",
                        help="maximum size of a request body, in bytes; larger bodies get 413; "
                        "0 for no limit (default: %(default)s)")
    parser.add_argument("--limit-request-line-bytes", type=int, default=8190, metavar="BYTES",
                        help="maximum size of the request line, in bytes; longer ones get 414 "
                        "(default: %(default)s)")
    parser.add_argument("--limit-request-field-bytes", type=int, default=8190, metavar="BYTES",
                        help="maximum size of one header field line, in bytes; longer ones get 431 "
                        "(default: %(default)s)")
    parser.add_argument("--limit-request-fields", type=int, default=100, metavar="COUNT",
                        help="maximum number of header fields; more get 431 (default: %(default)s)")
    parser.add_argument("--ssl-certfile", metavar="FILE", default=None,
                        help="PEM certificate chain: serve HTTPS, with HTTP/2 by ALPN (default: none)")
    parser.add_argument("--ssl-keyfile", metavar="FILE", default=None,
                        help="PEM private key of --ssl-certfile (default: none)")
    parser.add_argument("--http2-cleartext", action=argparse.BooleanOptionalAction, default=False,
                        help="also accept HTTP/2 without TLS from clients with prior knowledge (h2c) "
                        "(default: off)")
    parser.add_argument("--version", action="version", version=version_text())
    return parser


def version_text() -> str:
    from . import __version__

    return f"gobind {__version__} (Python {platform.python_version()}, {platform.system()})"


def apply_environment(parser: argparse.ArgumentParser, environ: "os._Environ[str] | dict") -> None:
    """Replace the defaults of parser with GOBIND_* environment variables.
    Empty variables are ignored, since deploy tools often export them."""
    for action in parser._actions:
        if not action.dest or action.dest in ("help", "version", "supervisor_fd"):
            continue
        name = ENV_PREFIX + action.dest.upper()
        raw = environ.get(name, "")
        if not raw:
            continue
        parser.set_defaults(**{action.dest: _convert_env(action, name, raw)})


def _convert_env(action: argparse.Action, name: str, raw: str) -> Any:
    if isinstance(action, (argparse.BooleanOptionalAction, argparse._StoreTrueAction)):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise UsageError(f"invalid {name} {raw!r}: expected true or false")
    if isinstance(action, argparse._AppendAction):
        return [line for line in raw.splitlines() if line.strip()]
    value: Any = raw
    if action.type is not None:
        try:
            value = action.type(raw)
        except ValueError:
            kind = "an integer" if action.type is int else "a number"
            raise UsageError(f"invalid {name} {raw!r}: expected {kind}") from None
    if action.choices is not None and value not in action.choices:
        raise UsageError(f"invalid {name} {raw!r}: expected one of {', '.join(action.choices)}")
    return value


def parse_headers(values: Sequence[str]) -> List[Tuple[str, str]]:
    headers = []
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"invalid --header {value!r}: expected NAME:VALUE, such as 'Server:gobind'")
        try:
            content.strip().encode("latin-1")
        except UnicodeEncodeError:
            raise UsageError(f"invalid --header {value!r}: the value must be latin-1 text") from None
        try:
            Headers([(name.strip(), content.strip())])
        except ValueError as error:
            raise UsageError(f"invalid --header {value!r}: {error}") from None
        headers.append((name.strip(), content.strip()))
    return headers


def load_app(spec: str, *, factory: bool, app_dir: str) -> Any:
    """Import MODULE:ATTRIBUTE (with app_dir first on sys.path) and return
    it, or what it returns when factory is set."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"invalid APP {spec!r}: expected MODULE:ATTRIBUTE, such as myproject.wsgi:application")
    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only the named module itself is a usage error; a module missing
        # inside the app is the app's bug and keeps its traceback.
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise UsageError(f"module {module_name!r} not found (--app-dir is {os.path.abspath(app_dir)!r})") from None
        raise
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"attribute {attribute!r} not found in module {module_name!r}") from None
    if factory:
        if not callable(target):
            raise UsageError(f"--factory: {spec!r} is not callable: got {type(target).__name__}")
        try:
            inspect.signature(target).bind()
        except TypeError as error:
            raise UsageError(f"--factory: {spec!r} cannot be called without arguments: {error}") from None
        except ValueError:
            pass  # no signature to check, as for some built-in callables
        target = target()
    return target


def detect_interface(app: Any, spec: str, interface: str) -> str:
    from ._server import Server

    from .asgi import is_asgi_app

    if isinstance(app, Server):
        found = "gobind"
    elif callable(app) and is_asgi_app(app):
        found = "asgi"
    elif callable(app):
        found = "wsgi"
    else:
        raise UsageError(f"{spec!r} is not a WSGI or ASGI application or gobind.Server: got {type(app).__name__}")
    if interface == "asgi" and found == "wsgi":
        # Detection looks for a coroutine function. An ASGI app whose plain
        # __call__ returns an awaitable, as compiled or wrapped apps do, is
        # served as ASGI when asked.
        return "asgi"
    if interface != "auto" and interface != found:
        kind = {"gobind": "a gobind.Server", "asgi": "an ASGI application", "wsgi": "a WSGI application"}[found]
        raise UsageError(f"--interface {interface}: {spec!r} is {kind}")
    return found


def config_error(error: BaseException) -> str:
    """Return the message of a logging.config failure followed by the errors
    that caused it. dictConfig's own message names only the part it could not
    configure, and a KeyError alone shows just the missing key."""
    parts: List[str] = []
    cause: Optional[BaseException] = error
    while cause is not None and len(parts) < 4:
        if isinstance(cause, KeyError) and len(cause.args) == 1:
            text = f"missing {cause.args[0]!r}"
        else:
            # configparser's messages span lines: one line here.
            text = " ".join((str(cause) or type(cause).__name__).split())
        # dictConfig's message names the key or the module already.
        if not parts or text.removeprefix("missing ") not in parts[-1]:
            parts.append(text)
        cause = cause.__cause__
    return ": ".join(parts)


def json_kind(value: object) -> str:
    """Return the JSON name of the type of a decoded JSON value."""
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def load_app_interruptibly(options: argparse.Namespace) -> Any:
    """Load the app. SIGINT during its import ends the process with status
    130, without a traceback. A SIGINT inherited ignored, as by a job a
    shell started in the background, does so too, as it stops the server
    later."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return load_app(options.app, factory=options.factory, app_dir=options.app_dir)
    except KeyboardInterrupt:
        # A second SIGINT must not interrupt the exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        logger.info("Interrupted while loading %s", options.app)
        raise SystemExit(130) from None
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def configure_logging(level: Optional[str], config_file: Optional[str], process_ids: bool = False) -> None:
    """Configure the gobind loggers from config_file, or else log to
    standard error, with the pid of each line when process_ids is set.
    A level of None leaves the gobind logger's level to config_file."""
    if config_file is not None:
        try:
            if config_file.endswith(".json"):
                with open(config_file, encoding="utf-8") as file:
                    config = json.load(file)
                if not isinstance(config, dict):
                    raise ValueError(f"the file contains a JSON {json_kind(config)}, not an object for dictConfig")
                # gobind's loggers exist already; a config that sets up only
                # the root logger must not silence them.
                config.setdefault("disable_existing_loggers", False)
                logging.config.dictConfig(config)
            else:
                logging.config.fileConfig(config_file, disable_existing_loggers=False)
        except Exception as error:  # noqa: BLE001 - any failure of the user's file is a usage error
            raise UsageError(f"cannot load log config {config_file!r}: {config_error(error)}") from None
    elif not logger.handlers:
        handler = logging.StreamHandler()
        pid = " [%(process)d]" if process_ids else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{pid}: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if level is not None:
        logger.setLevel(level.upper())


def bind_address(options: argparse.Namespace) -> str:
    if options.fd is not None:
        return f"fd:{options.fd}"
    if options.uds is not None:
        return f"unix:{options.uds}"
    host = options.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{options.port}"


def listen_error(address: str, error: OSError) -> UsageError:
    """Return the usage error for a failed listen on address. The reason is
    the last part of the engine's message, such as "address already in use"
    or "file exists and is not a socket"."""
    if error.strerror:
        reason = error.strerror.rsplit(": ", 1)[-1]
    elif error.errno:
        reason = os.strerror(error.errno).lower()
    else:
        reason = str(error)
    return UsageError(f"cannot listen on {address}: {reason}")


# Options that a gobind.Server app sets in its own code, not on the command line.
SERVER_SETTINGS = (
    "threads", "access_log", "timeout_keep_alive",
    "timeout_read_header", "timeout_read", "timeout_write",
    "limit_request_header_bytes", "timeout_graceful_shutdown", "limit_request_line_bytes",
    "limit_request_field_bytes", "limit_request_fields", "ssl_certfile", "ssl_keyfile", "http2_cleartext",
)

# Options of the WSGI and ASGI adapters that a gobind.Server app does not have.
ADAPTER_SETTINGS = ("root_path", "header", "limit_request_body_bytes")

# The command-line flag of each setting that errors name by its Python keyword.
FLAGS = {
    "idle_timeout": "--timeout-keep-alive",
    "read_header_timeout": "--timeout-read-header",
    "read_timeout": "--timeout-read",
    "write_timeout": "--timeout-write",
    "shutdown_timeout": "--timeout-graceful-shutdown",
    "max_header_bytes": "--limit-request-header-bytes",
    "max_request_line_bytes": "--limit-request-line-bytes",
    "max_header_field_bytes": "--limit-request-field-bytes",
    "max_header_fields": "--limit-request-fields",
    "max_body_bytes": "--limit-request-body-bytes",
    "threads": "--threads",
    "max_concurrency": "--limit-concurrency",
}


def flag_message(error: Exception) -> str:
    """Return the message of error with a Python keyword replaced by its flag."""
    message = str(error)
    for keyword, flag in FLAGS.items():
        prefix = f"invalid {keyword} "
        if message.startswith(prefix):
            return f"invalid {flag} " + message[len(prefix):]
    return message


def make_server(app: Any, interface: str, options: argparse.Namespace) -> Any:
    _reject_asgi_options(options)
    if interface == "gobind":
        sources = [options.explicit[name] for name in ADAPTER_SETTINGS if name in options.explicit]
        if sources:
            raise UsageError(f"{', '.join(sources)}: for WSGI and ASGI apps only, not for a gobind.Server app")
        sources = [options.explicit[name] for name in SERVER_SETTINGS if name in options.explicit]
        if sources:
            raise UsageError(
                f"{', '.join(sources)}: not applied to a gobind.Server app; pass the setting to gobind.Server() in the app"
            )
        return app
    from . import wsgi

    check_root_path(options.root_path)
    if options.threads < 1:
        raise UsageError(f"invalid --threads {options.threads}: must be 1 or more")
    if options.limit_request_header_bytes < 1:
        raise UsageError(f"invalid --limit-request-header-bytes {options.limit_request_header_bytes}: must be 1 or more")
    if options.limit_request_body_bytes < 0:
        raise UsageError(f"invalid --limit-request-body-bytes {options.limit_request_body_bytes}: must be 0 or more")
    try:
        return wsgi.make_server(
            app,
            threads=options.threads,
            root_path=options.root_path,
            default_headers=parse_headers(options.header),
            max_body_bytes=options.limit_request_body_bytes,
            multiprocess=options.supervisor_fd is not None,
            **engine_options(options),
        )
    except ValueError as error:
        raise UsageError(flag_message(error)) from None


def check_root_path(root_path: str) -> None:
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise UsageError(f"invalid --root-path {root_path!r}: must start with '/' and not end with '/', such as /api")


def engine_options(options: argparse.Namespace) -> dict:
    """Settings that every interface passes to the engine."""
    for name in ("limit_request_line_bytes", "limit_request_field_bytes", "limit_request_fields"):
        value = getattr(options, name)
        if value < 1:
            raise UsageError(f"invalid --{name.replace('_', '-')} {value}: must be 1 or more")
    if bool(options.ssl_certfile) != bool(options.ssl_keyfile):
        raise UsageError("--ssl-certfile and --ssl-keyfile must be given together")
    return {
        "access_log": options.access_log,
        "idle_timeout": options.timeout_keep_alive,
        "read_header_timeout": options.timeout_read_header,
        "read_timeout": options.timeout_read,
        "write_timeout": options.timeout_write,
        "max_header_bytes": options.limit_request_header_bytes,
        "shutdown_timeout": options.timeout_graceful_shutdown,
        "max_request_line_bytes": options.limit_request_line_bytes,
        "max_header_field_bytes": options.limit_request_field_bytes,
        "max_header_fields": options.limit_request_fields,
        "ssl_certfile": options.ssl_certfile,
        "ssl_keyfile": options.ssl_keyfile,
        "http2_cleartext": options.http2_cleartext,
    }


def serve_asgi(app: Any, options: argparse.Namespace) -> None:
    """Run an ASGI app on its event loop until SIGINT or SIGTERM."""
    from . import asgi

    if options.threads != 1:
        raise UsageError(f"invalid --threads {options.threads} for an ASGI app: it runs on one event loop thread")
    if options.header:
        raise UsageError("--header applies to WSGI apps only")
    check_root_path(options.root_path)
    try:
        asgi.serve(
            app,
            host=options.host,
            port=options.port,
            uds=options.uds,
            fd=options.fd,
            root_path=options.root_path,
            lifespan=options.lifespan,
            loop=options.loop,
            max_body_bytes=options.limit_request_body_bytes,
            max_concurrency=options.limit_concurrency,
            **engine_options(options),
        )
    except ImportError as error:
        raise UsageError(str(error)) from None
    except ValueError as error:
        raise UsageError(flag_message(error)) from None
    except OSError as error:
        raise listen_error(bind_address(options), error) from None


def run(options: argparse.Namespace, argv: Sequence[str]) -> int:
    """Serve the app that options name; return the exit status."""
    worker = options.supervisor_fd is not None
    # With worker processes, each line names the process that wrote it.
    # With a log config file, the gobind logger's level is the file's unless --log-level is given.
    level = options.log_level if options.log_config is None or "log_level" in options.explicit else None
    configure_logging(level, options.log_config, process_ids=worker or options.workers > 1)
    check_listen_options(options, worker)
    if options.workers > 1 and not worker:
        return supervise(options, argv)
    if worker:
        from ._supervisor import SupervisorLink

        SupervisorLink(options.supervisor_fd, options.fd)
    app = load_app_interruptibly(options)
    interface = detect_interface(app, options.app, options.interface)
    if interface == "asgi":
        try:
            serve_asgi(app, options)
        except SystemExit:
            # A forced stop (a second signal) that ended serve() before its
            # own exit check, such as while the event loop closed: threads
            # the app left must not hold the exit.
            _exit_if_held(0.0)
            raise
        _wait_for_threads()
        return 0
    server = make_server(app, interface, options)
    address = bind_address(options)
    # Until serve() installs its own handlers, SIGTERM stops the server the
    # same way Ctrl-C does, and so does SIGINT when it was inherited ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, _interrupt)
    serving = False
    try:
        try:
            server.start(options.host, options.port, uds=options.uds, fd=options.fd)
        except OSError as error:
            raise listen_error(address, error) from None
        except ValueError as error:
            raise UsageError(f"cannot listen on {address}: {error}") from None
        serving = True
        server.serve()
    except KeyboardInterrupt:
        if serving:
            # serve() handles the first signal itself. A KeyboardInterrupt
            # that escapes it comes from a second signal, sent before serve()
            # had taken the first.
            logger.warning("Second interrupt: closing all connections now")
            server.close()
            _exit_if_held()
            return 1
        server.shutdown()
    # Freeing the server waits for its handler calls without a bound, and
    # no signal reaches Python meanwhile. So calls still running 5 s after
    # the stop end the process, with status 1, as a second signal does.
    _exit_if_held(5.0, count_threads=False)
    _wait_for_threads()
    return 0


def check_listen_options(options: argparse.Namespace, worker: bool) -> None:
    if options.workers < 1:
        raise UsageError(f"invalid --workers {options.workers}: must be 1 or more")
    if options.fd is None:
        return
    if options.fd < 0:
        raise UsageError(f"invalid --fd {options.fd}: must be a descriptor number, 0 or more")
    if worker:
        # A worker's command line keeps the user's address and adds --fd.
        options.uds = None
        return
    sources = [options.explicit[name] for name in ("host", "port", "uds") if name in options.explicit]
    if sources:
        raise UsageError(f"--fd and {', '.join(sources)} cannot be given together: --fd replaces the address")


def supervise(options: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run options.workers worker processes of this command line."""
    from . import _gobind
    from ._supervisor import run_supervisor

    address = bind_address(options)
    if options.fd is not None:
        check_descriptor(options.fd)
        return run_supervisor(options, argv, options.fd, address, owned=False)
    try:
        # The checks of a single process: an empty host must not bind every interface.
        _listen_address(options.host, options.port, options.uds, None)
        fd, bound = _gobind.open_listener(address)
    except OSError as error:
        raise listen_error(address, error) from None
    except ValueError as error:
        raise UsageError(f"cannot listen on {address}: {error}") from None
    return run_supervisor(options, argv, fd, bound, owned=True)


def check_descriptor(fd: int) -> None:
    """Check that fd is a listening socket, as the engine does, before
    workers are started to serve it."""
    try:
        probe = socket.socket(fileno=fd)
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise UsageError(f"cannot listen on fd:{fd}: {reason}") from None
    try:
        accepting = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        probe.detach()
    if not accepting:
        raise UsageError(f"cannot listen on fd:{fd}: descriptor {fd} is a socket that does not listen")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _reject_asgi_options(options: argparse.Namespace) -> None:
    sources = [options.explicit[name] for name in ("lifespan", "loop", "limit_concurrency") if name in options.explicit]
    if sources:
        raise UsageError(f"{', '.join(sources)}: for ASGI apps only")


def explicit_settings(argv: Optional[Sequence[str]], environ: "os._Environ[str] | dict") -> dict:
    """Return the options that the command line or a non-empty GOBIND_*
    variable sets, even to their default values, each mapped to where it
    was set: the flag as given (such as --no-access-log) or the variable."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    parsed = vars(parser.parse_known_args(argv)[0])
    sources = {}
    for action in parser._actions:
        variable = ENV_PREFIX + action.dest.upper()
        if action.dest in parsed and action.option_strings:
            flag = action.option_strings[0]
            if isinstance(action, argparse.BooleanOptionalAction) and not parsed[action.dest]:
                flag = "--no-" + flag.removeprefix("--")
            sources[action.dest] = flag
        elif action.dest in parsed:
            sources[action.dest] = action.dest.upper()
        elif environ.get(variable):
            sources[action.dest] = variable
    return sources


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        apply_environment(parser, os.environ)
        options = parser.parse_args(argv)
        options.explicit = explicit_settings(argv, os.environ)
        if options.app is None:
            parser.error("the following arguments are required: APP (or GOBIND_APP)")
        return run(options, sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        print(f"gobind: error: {error}", file=sys.stderr)
        return 1
