"""The servers under test: how each one is started for a workload, and what
it needs to be present."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .workloads import APP_BASIC, APP_FASTAPI, APP_FLASK, Workload

# Python application of each interface and app family, as module:attribute
# relative to bench/ (the servers run with bench/ as working directory).
APPS = {
    ("wsgi", APP_BASIC): "apps.wsgi_app:app",
    ("wsgi", APP_FLASK): "apps.flask_app:app",
    ("asgi", APP_BASIC): "apps.asgi_app:app",
    ("asgi", APP_FASTAPI): "apps.fastapi_app:app",
    ("rsgi", APP_BASIC): "apps.rsgi_app:app",
}

# Python packages that the app families need, beyond the server's own.
APP_MODULES = {APP_FLASK: ("flask",), APP_FASTAPI: ("fastapi",)}

GO = "go"  # the pure-Go baseline
GOBIND = "gobind"  # gobind in any of its forms
PEER = "peer"  # another server, compared against


@dataclass
class Context:
    """Paths and capabilities found on this machine, used to build server commands."""

    python: str
    gohello: Optional[str]  # path of the built bench/gohello binary
    gohello_missing: str  # why gohello is None
    cpp_binary: Optional[str]
    cpp_args: str  # argument template with {host} and {port}
    gobind: dict  # capabilities reported by harness.probe_gobind
    sync_threads: int  # threads of sync servers for workloads that do not block
    blocking_threads: int  # threads of sync servers for the handlers that wait
    cpp_missing: str = "missing: C++ hello binary (pass --cpp-binary PATH)"  # why cpp_binary is None


@dataclass
class Launch:
    """One server command for one workload."""

    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)


@dataclass
class ServerSpec:
    """A server under test."""

    name: str  # command-line name (--only)
    title: str  # table label
    family: str  # GO, GOBIND or PEER
    interface: str  # go, gobind, wsgi, asgi, rsgi, c++
    apps: Tuple[str, ...]  # app families it runs
    http2: bool  # may speak h2c with prior knowledge (checked by a probe)
    multicore: bool  # has worker processes; GO counts because GOMAXPROCS follows the cores
    modules: Tuple[str, ...]  # Python modules it needs
    build: Callable[[Context, Workload, int, int], Launch]  # (context, workload, port, workers)
    missing_extra: Callable[[Context, int], Optional[str]] = lambda context, workers: None
    strict_body: bool = True  # False: a different response body is noted, not a failure
    configuration: str = ""  # how it is run, for the results page

    def missing(self, context: Context, workload: Workload, workers: int = 1) -> Optional[str]:
        """Return why this server cannot run the workload here, or None when it can."""
        modules = self.modules + APP_MODULES.get(workload.app, ())
        if self.family == GO:
            modules = ()
        absent = [module for module in modules if importlib.util.find_spec(module) is None]
        if absent:
            return "missing: Python package " + ", ".join(absent) + " (pip install -r bench/requirements.txt)"
        return self.missing_extra(context, workers)

    def serves(self, workload: Workload) -> bool:
        """Tell whether this server takes part in the workload's table."""
        if workload.http2 and not self.http2:
            return False
        if self.family == GO:
            return True
        return workload.app in self.apps


def _threads(context: Context, workload: Workload) -> int:
    return context.blocking_threads if workload.blocking else context.sync_threads


def _gohello(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    return Launch([context.gohello, "-address", f"127.0.0.1:{port}"])


def _gohello_missing(context: Context, workers: int) -> Optional[str]:
    return None if context.gohello else context.gohello_missing


def _gobind_plain(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    threads = str(_threads(context, workload))
    if workers > 1:
        # Worker processes come from the gobind command, which builds the
        # same server in each of them.
        argv = [context.python, "-m", "gobind", "apps.gobind_app:from_environment", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        return Launch(argv, {"BENCH_THREADS": threads, "BENCH_HTTP2_CLEARTEXT": "1" if workload.http2 else "0"})
    argv = [context.python, "-m", "apps.gobind_app", "--port", str(port), "--threads", threads]
    if workload.http2:
        argv.append("--http2-cleartext")
    return Launch(argv)


def _gobind_plain_missing(context: Context, workers: int) -> Optional[str]:
    if not context.gobind.get("importable"):
        return "missing: gobind is not importable: " + context.gobind.get("error", "")
    if workers > 1 and "--workers" not in context.gobind.get("cli_options", []):
        return "missing: the gobind command has no --workers option"
    return None


def _gobind_adapter(interface: str) -> Callable[[Context, Workload, int, int], Launch]:
    def build(context: Context, workload: Workload, port: int, workers: int) -> Launch:
        app = APPS[(interface, workload.app)]
        threads = str(_threads(context, workload))
        cli = context.gobind.get("cli_options", [])
        if context.gobind.get("cli") and interface in context.gobind.get("cli_interfaces", []):
            argv = [context.python, "-m", "gobind", app, "--host", "127.0.0.1", "--port", str(port)]
            if "--interface" in cli:
                argv += ["--interface", interface]
            # An ASGI app runs on one event loop thread: no --threads.
            if interface == "wsgi":
                argv += ["--threads", threads]
            if "--no-access-log" in cli:
                argv.append("--no-access-log")
            if workload.http2 and "--http2-cleartext" in cli:
                argv.append("--http2-cleartext")
            if workers > 1:
                argv += ["--workers", str(workers)]
            return Launch(argv)
        argv = [context.python, "-m", "apps.serve_gobind", interface, app, "--port", str(port)]
        if interface == "wsgi":
            argv += ["--threads", threads]
        return Launch(argv)

    return build


def _gobind_adapter_missing(interface: str) -> Callable[[Context, int], Optional[str]]:
    def missing(context: Context, workers: int) -> Optional[str]:
        if not context.gobind.get("importable"):
            return "missing: gobind is not importable: " + context.gobind.get("error", "")
        if not context.gobind.get(interface):
            return f"missing: gobind.{interface} (the {interface.upper()} adapter is not in this gobind)"
        if workers > 1 and "--workers" not in context.gobind.get("cli_options", []):
            return "missing: the gobind command has no --workers option"
        return None

    return missing


def _gobind_cpp(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    args = context.cpp_args.format(host="127.0.0.1", port=port).split()
    return Launch([context.cpp_binary] + args)


def _gobind_cpp_missing(context: Context, workers: int) -> Optional[str]:
    if not context.cpp_binary:
        return context.cpp_missing
    if workers > 1:
        return "missing: the C++ binary runs in one process"
    return None


def _granian(interface: str) -> Callable[[Context, Workload, int, int], Launch]:
    def build(context: Context, workload: Workload, port: int, workers: int) -> Launch:
        argv = [context.python, "-m", "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(workers), "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
        if interface == "wsgi":
            argv += ["--blocking-threads", str(_threads(context, workload))]
        if workload.http2:
            argv += ["--http", "2"]
        return Launch(argv + [APPS[(interface, workload.app)]])

    return build


def _uvicorn(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    argv = [context.python, "-m", "uvicorn", APPS[("asgi", workload.app)], "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Launch(argv)


def _gunicorn_gthread(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    argv = [context.python, "-m", "gunicorn", "--worker-class", "gthread", "--threads", str(_threads(context, workload))]
    argv += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Launch(argv + [APPS[("wsgi", workload.app)]])


def _uvicorn_worker_class() -> str:
    if importlib.util.find_spec("uvicorn_worker") is not None:
        return "uvicorn_worker.UvicornWorker"
    return "uvicorn.workers.UvicornWorker"


def _gunicorn_uvicorn(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    argv = [context.python, "-m", "gunicorn", "--worker-class", _uvicorn_worker_class()]
    argv += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    return Launch(argv + [APPS[("asgi", workload.app)]])


def _hypercorn(context: Context, workload: Workload, port: int, workers: int) -> Launch:
    argv = [context.python, "-m", "hypercorn", "--worker-class", "uvloop", "--workers", str(workers)]
    # hypercorn 0.18 listens with a backlog of 100, so Linux can drop SYNs
    # when 512 connections open at once; 2048 is uvicorn's and gunicorn's default.
    argv += ["--bind", f"127.0.0.1:{port}", "--backlog", "2048", "--log-level", "warning"]
    return Launch(argv + [APPS[("asgi", workload.app)]])


_BASIC_WSGI = (APP_BASIC, APP_FLASK)
_BASIC_ASGI = (APP_BASIC, APP_FASTAPI)

ALL = [
    ServerSpec(
        "gohello", "Go net/http", GO, "go", (APP_BASIC,), True, True, (), _gohello, _gohello_missing,
        configuration="bench/gohello: net/http with gobind's default timeouts, HTTP/1.1 and h2c; GOMAXPROCS left to Go.",
    ),
    ServerSpec(
        "gobind", "gobind handler", GOBIND, "gobind", (APP_BASIC,), True, True, (), _gobind_plain, _gobind_plain_missing,
        configuration="apps/gobind_app.py: gobind.Server(threads=N, access_log=False), one handler per route; "
        "`--http2-cleartext` for h2c; worker processes through `python -m gobind "
        "apps.gobind_app:from_environment --factory --workers N`.",
    ),
    ServerSpec(
        "gobind-wsgi", "gobind WSGI", GOBIND, "wsgi", _BASIC_WSGI, True, True, (), _gobind_adapter("wsgi"), _gobind_adapter_missing("wsgi"),
        configuration="`python -m gobind APP --interface wsgi --threads N --no-access-log`, or gobind.wsgi.serve without the command; "
        "`--http2-cleartext` for h2c.",
    ),
    ServerSpec(
        "gobind-asgi", "gobind ASGI", GOBIND, "asgi", _BASIC_ASGI, True, True, (), _gobind_adapter("asgi"), _gobind_adapter_missing("asgi"),
        configuration="`python -m gobind APP --interface asgi --no-access-log`, or gobind.asgi.serve without the command; "
        "uvloop when installed; `--http2-cleartext` for h2c.",
    ),
    ServerSpec(
        "gobind-cpp", "gobind C++ handler", GOBIND, "c++", (APP_BASIC,), False, False, (), _gobind_cpp, _gobind_cpp_missing,
        strict_body=False,
        configuration="The C++ hello-world binary given with --cpp-binary; it serves GET /hello only, over HTTP/1.1.",
    ),
    ServerSpec(
        "granian-rsgi", "granian RSGI", PEER, "rsgi", (APP_BASIC,), True, True, ("granian", "uvloop"), _granian("rsgi"),
        configuration="RSGI, granian's own interface: `--loop uvloop --no-access-log`, `--http 2` for h2c.",
    ),
    ServerSpec(
        "granian-asgi", "granian ASGI", PEER, "asgi", _BASIC_ASGI, True, True, ("granian", "uvloop"), _granian("asgi"),
        configuration="`--interface asgi --loop uvloop --no-access-log`, `--http 2` for h2c.",
    ),
    ServerSpec(
        "granian-wsgi", "granian WSGI", PEER, "wsgi", _BASIC_WSGI, True, True, ("granian",), _granian("wsgi"),
        configuration="`--interface wsgi --blocking-threads N --no-access-log`, `--http 2` for h2c.",
    ),
    ServerSpec(
        "uvicorn", "uvicorn (uvloop, httptools)", PEER, "asgi", _BASIC_ASGI, False, True, ("uvicorn", "uvloop", "httptools"), _uvicorn,
        configuration="`--loop uvloop --http httptools --no-access-log`: the C implementations of `uvicorn[standard]`.",
    ),
    ServerSpec(
        "gunicorn-gthread", "gunicorn gthread", PEER, "wsgi", _BASIC_WSGI, False, True, ("gunicorn",), _gunicorn_gthread,
        configuration="`--worker-class gthread --threads N`; gunicorn writes no access log unless asked.",
    ),
    ServerSpec(
        "gunicorn-uvicorn", "gunicorn + UvicornWorker", PEER, "asgi", _BASIC_ASGI, False, True, ("gunicorn", "uvicorn", "uvloop", "httptools"),
        _gunicorn_uvicorn,
        configuration="`--worker-class uvicorn_worker.UvicornWorker` (uvicorn.workers without the uvicorn-worker package); "
        "uvloop and httptools picked by the worker.",
    ),
    ServerSpec(
        "hypercorn", "hypercorn (uvloop)", PEER, "asgi", _BASIC_ASGI, True, True, ("hypercorn", "uvloop"), _hypercorn,
        configuration="`--worker-class uvloop --backlog 2048`; hypercorn writes no access log unless asked.",
    ),
]

BY_NAME = {spec.name: spec for spec in ALL}
