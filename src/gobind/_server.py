"""The Server class: routes, lifecycle, signals and logging."""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import signal
import sys
import threading
import time
import weakref
from typing import Callable, List, Optional

from . import _gobind
from ._gobind import Request, ResponseWriter

Handler = Callable[[ResponseWriter, Request], object]

logger = logging.getLogger("gobind")
access_logger = logging.getLogger("gobind.access")
engine_logger = logging.getLogger("gobind.server")

# How often a blocking run() wakes up so that Python can run signal handlers.
_SIGNAL_POLL_SECONDS = 0.1

_live_servers: "weakref.WeakSet[Server]" = weakref.WeakSet()


class Server:
    """An HTTP server whose engine is Go's net/http and whose handlers are
    Python functions ``handler(w, req)``.

    ``threads`` bounds how many handlers run at once, like gunicorn's
    ``--threads``. Requests beyond it wait in Go, as goroutines, without
    holding an OS thread. CPU-bound handlers are fastest with 1. Handlers
    that block on I/O release the GIL and need more.

    Timeouts are in seconds: ``read_header_timeout`` for the request line and
    headers, ``read_timeout`` for each body read, ``write_timeout`` for a
    response write that the client stalls, ``idle_timeout`` for a keep-alive
    connection between requests. ``shutdown_timeout`` bounds the graceful part of a shutdown.

    ``ssl_certfile`` and ``ssl_keyfile`` (PEM) serve HTTPS, with HTTP/2
    negotiated by ALPN. ``http2_cleartext`` also accepts HTTP/2 without TLS
    from clients that use prior knowledge (h2c).
    Request head limits, in bytes or lines: ``max_header_bytes`` for the
    request line and header section together (431 beyond),
    ``max_request_line_bytes`` (414), ``max_header_field_bytes`` for one
    header field line (431) and ``max_header_fields`` (431). The connection
    closes after such a rejection.
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        read_header_timeout: float = 10.0,
        read_timeout: float = 60.0,
        write_timeout: float = 60.0,
        idle_timeout: float = 75.0,
        max_header_bytes: int = 64 * 1024,
        max_request_line_bytes: int = 8190,
        max_header_field_bytes: int = 8190,
        max_header_fields: int = 100,
        shutdown_timeout: float = 30.0,
        access_log: bool = True,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        http2_cleartext: bool = False,
    ) -> None:
        _check_limits(threads=threads)
        _check_timeouts(shutdown_timeout=shutdown_timeout)
        self.threads = threads
        self.shutdown_timeout = shutdown_timeout
        self.access_log = access_log
        self._native = _native_server(
            max_concurrent_calls=threads,
            read_header_timeout=read_header_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            idle_timeout=idle_timeout,
            max_header_bytes=max_header_bytes,
            max_request_line_bytes=max_request_line_bytes,
            max_header_field_bytes=max_header_field_bytes,
            max_header_fields=max_header_fields,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            http2_cleartext=http2_cleartext,
        )
        self._scheme = "https" if ssl_certfile else "http"
        self._native.set_hooks(_log_handler_error, _log_access if access_log else None)
        self._native.set_access_log(_log_access if access_log else None)
        self._native.set_log(_log_engine_line)
        self._address: Optional[str] = None
        self._stopped = False
        self._lock = threading.Lock()
        # Set once a shutdown or close has finished; serving ends earlier,
        # when the listener closes.
        self._finished = threading.Event()

    @property
    def address(self) -> Optional[str]:
        """The bound address ("127.0.0.1:8000", "[::1]:8000", "unix:/path"), or None before start."""
        return self._address

    @property
    def url(self) -> Optional[str]:
        """The bound address as a URL, or None before start."""
        if self._address is None or self._address.startswith("unix:"):
            return self._address
        return f"{self._scheme}://{self._address}"

    def route(self, pattern: str) -> Callable[[Handler], Handler]:
        """Register the decorated function for a net/http pattern such as
        ``"GET /items/{id}"`` or ``"/static/{path...}"``."""

        def register(handler: Handler) -> Handler:
            self.handle(pattern, handler)
            return handler

        return register

    def handle(self, pattern: str, handler: Handler) -> None:
        """Register handler for pattern; raises ValueError for an invalid or
        conflicting pattern."""
        _check_handler(handler, pattern)
        self._native.handle(pattern, handler)

    def handle_all(self, handler: Handler) -> None:
        """Send every request to handler, with paths exactly as sent: no
        pattern matching, path cleaning or redirects."""
        _check_handler(handler, "every request")
        self._native.handle_all(handler)

    def start(
        self, host: str = "127.0.0.1", port: int = 8000, *, uds: Optional[str] = None, fd: Optional[int] = None
    ) -> str:
        """Bind and serve in the background; returns the bound address.

        Port 0 picks a free port. ``uds`` listens on a Unix socket instead,
        and ``fd`` serves a listening socket inherited as that descriptor,
        which the server then owns and closes. Bind failures raise OSError
        with the errno.
        """
        address = _listen_address(host, port, uds, fd)
        self._address = self._native.start(address)
        _live_servers.add(self)
        logger.info(
            "Serving on %s (pid %d, %d Python thread%s)",
            self.url,
            os.getpid(),
            self.threads,
            "" if self.threads == 1 else "s",
        )
        _notify_listening(address)
        return self._address

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the server stops or timeout seconds pass; returns
        True once stopped. The GIL is released while waiting."""
        if timeout is not None:
            _check_timeouts(timeout=timeout)
        return self._native.wait(timeout)

    def serve(self) -> None:
        """Block until the server stops. Ctrl-C and SIGTERM shut it down
        gracefully; a second Ctrl-C closes every connection at once."""
        with _StopSignals(self) as signals:
            try:
                while not self._native.wait(_SIGNAL_POLL_SECONDS):
                    pass
                # A shutdown from another thread closes the listener first,
                # then drains the requests in flight.
                while self._stopped and not self._finished.wait(_SIGNAL_POLL_SECONDS):
                    pass
            except KeyboardInterrupt:
                if signals.forced:
                    # The supervisor passes on a user's second signal.
                    self._close_now()
                self._shutdown_interruptibly()

    def run(
        self, host: str = "127.0.0.1", port: int = 8000, *, uds: Optional[str] = None, fd: Optional[int] = None
    ) -> None:
        """Start and serve until Ctrl-C, SIGTERM or shutdown()."""
        _configure_default_logging()
        self.start(host, port, uds=uds, fd=fd)
        self.serve()

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Stop accepting, let in-flight requests finish for up to timeout
        seconds (default shutdown_timeout), then close what is left.
        Returns False when the timeout cut requests off. While another
        thread shuts down, waits up to timeout for it to finish."""
        if timeout is None:
            timeout = self.shutdown_timeout
        _check_timeouts(timeout=timeout)
        with self._lock:
            already = self._stopped
            self._stopped = True
        if already:
            return self._finished.wait(timeout)
        try:
            return self._shutdown(timeout)
        finally:
            self._finished.set()

    def _shutdown(self, timeout: float) -> bool:
        _log_shutting_down(*self._native.stats())
        try:
            graceful = self._native.shutdown(timeout)
        except RuntimeError:
            # Not started: nothing to drain.
            graceful = True
        if not graceful:
            logger.warning("Graceful shutdown timed out after %.1f s; closed the remaining connections", timeout)
        logger.info("Stopped")
        return graceful

    def close(self) -> None:
        """Close the listener and every connection at once."""
        with self._lock:
            self._stopped = True
        self._native.close()
        self._finished.set()

    def _shutdown_interruptibly(self) -> None:
        # The graceful shutdown runs in a thread so that a second Ctrl-C can
        # still reach the main thread and force the close.
        worker = threading.Thread(target=self.shutdown, name="gobind-shutdown", daemon=True)
        with self._lock:
            already = self._stopped
        if already:
            return
        try:
            worker.start()
            while worker.is_alive():
                worker.join(_SIGNAL_POLL_SECONDS)
        except KeyboardInterrupt:
            self._close_now()

    def _close_now(self) -> None:
        logger.warning("Second interrupt: closing all connections now")
        self._native.close()
        _exit_if_held()
        raise SystemExit(1) from None

    def __repr__(self) -> str:
        return f"<gobind.Server {self.url or 'not started'}>"


# Set in a worker process of the gobind command. There a SIGTERM after the
# first is not a second signal: systemd's default stop sends SIGTERM to
# every process of a service, and the supervisor passes its own on. The
# supervisor forces a stop with SIGINT instead.
supervised = False


class _StopSignals:
    """Signal handlers that shut one server down gracefully while it serves.

    They handle SIGTERM, and SIGINT when it has no Python handler, even when
    it is ignored: a non-interactive shell starts background processes with
    SIGINT ignored. They are installed on the main thread only, and the
    previous handlers come back afterwards."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._previous: dict = {}
        self._stopping = False
        # Set by the supervisor's SIGINT in a worker: stop at once.
        self.forced = False

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_signal)
        if supervised or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL):
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        if supervised:
            if signum == signal.SIGINT:
                self.forced = True
            elif self._stopping:
                return
        self._stopping = True
        # Raised in the main thread's serve loop, which shuts down gracefully.
        raise KeyboardInterrupt


def _exit_if_held(wait: float = 1.0, *, count_threads: bool = True) -> None:
    """End the process at once, with status 1, when handler calls or other
    threads would hold its exit after a second interrupt.

    Handler calls get wait seconds to leave Python. A call still inside
    would take the GIL during interpreter finalization, and a non-daemon
    thread, such as a job of an asyncio executor, would be joined first
    (unless count_threads is false). So the process ends without
    finalizing, after the logs are flushed. A SIGINT or SIGTERM during the
    wait ends the process at once, with status 1."""
    signalled = []

    def note(signum: int, frame: object) -> None:
        if not (signum == signal.SIGTERM and supervised):
            signalled.append(signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    calls = _gobind.close_calls(0.0)
    if calls and wait > 0:
        logger.info("Waiting up to %g s for %s still running in Python", wait, plural(calls, "handler call"))
        deadline = time.monotonic() + wait
        # Short slices: Python runs note() between two of them.
        while calls and not signalled and time.monotonic() < deadline:
            calls = _gobind.close_calls(min(_SIGNAL_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    threads = _app_threads() if count_threads or signalled else []
    if not calls and not threads and not signalled:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        return
    if not calls and not threads:
        logger.warning("Second interrupt: exiting now")
    elif count_threads or calls:
        logger.warning(
            "Exiting without waiting for %d handler call%s and %d thread%s still running",
            calls, "" if calls == 1 else "s", len(threads), "" if len(threads) == 1 else "s",
        )
    else:
        logger.warning("Exiting without waiting for %s", plural(len(threads), "thread"))
    _exit_now(1)


def _exit_now(status: int) -> None:
    """End the process with status, without finalizing the interpreter,
    after the logs and the standard streams are flushed."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(status)


def _app_threads() -> list:
    """Return the live non-daemon threads other than the main thread: those
    the interpreter joins before it exits."""
    return [
        thread for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]


def _wait_for_threads() -> None:
    """Wait, after the server stopped, for the threads the app left running,
    such as a synchronous Starlette endpoint in its worker thread. The
    interpreter would join them at exit without a word. Here a log line
    names them, and SIGINT or SIGTERM ends the process at once, with status
    1 (SIGINT only, under a supervisor). Called from the main thread."""
    if not _app_threads():
        return

    def force(signum: int, frame: object) -> None:
        if signum == signal.SIGTERM and supervised:
            return  # the same request again, from systemd and the supervisor
        logger.warning("Exiting without waiting for %s", plural(len(_app_threads()), "thread"))
        _exit_now(1)

    # Installed first: a signal during the waits below must not be lost.
    previous = {signum: signal.signal(signum, force) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Threads that are already ending, such as the idle workers of a
        # pool whose owner stopped, get a moment to finish.
        threads = _app_threads()
        grace_end = time.monotonic() + 0.1
        for thread in threads:
            thread.join(max(0.0, grace_end - time.monotonic()))
        threads = [thread for thread in threads if thread.is_alive()]
        if not threads:
            return
        names = ", ".join(sorted({thread.name for thread in threads}))
        ending = "SIGINT ends" if supervised else "SIGINT or SIGTERM ends"
        logger.info("Waiting for %s of the application to end (%s); %s the process now",
                    plural(len(threads), "thread"), names, ending)
        for thread in threads:
            # Short joins, so that the signal handlers run meanwhile.
            while thread.is_alive():
                thread.join(0.5)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def plural(count: int, noun: str) -> str:
    """Return "1 worker" or "2 workers"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _log_shutting_down(active: int, connections: int) -> None:
    logger.info("Shutting down: %s in flight, %s open", plural(active, "request"), plural(connections, "connection"))


# The engine stores limits as signed 64-bit integers and adds to some of
# them (net/http reads up to max_header_bytes + 4096), so the largest value
# leaves room below 2**63.
_MAX_LIMIT = 2**62


def _check_limits(lowest: int = 1, **limits: int) -> None:
    for name, value in limits.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"invalid {name} {value!r}: must be an integer")
        if value < lowest:
            raise ValueError(f"invalid {name} {value!r}: must be {lowest} or more")
        if value > _MAX_LIMIT:
            raise ValueError(f"invalid {name} {value!r}: must be at most 2**62")


def _check_timeouts(**timeouts: float) -> None:
    for name, value in timeouts.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"invalid {name} {value!r}: must be a number of seconds")
        if not value >= 0:
            raise ValueError(f"invalid {name} {value!r}: must be 0 or more seconds")


def _native_server(
    *,
    max_concurrent_calls: int,
    read_header_timeout: float,
    read_timeout: float,
    write_timeout: float,
    idle_timeout: float,
    max_header_bytes: int,
    max_request_line_bytes: int,
    max_header_field_bytes: int,
    max_header_fields: int,
    ssl_certfile: Optional[str],
    ssl_keyfile: Optional[str],
    http2_cleartext: bool,
) -> "_gobind.Server":
    """Check the engine settings that every interface shares (plain
    handlers, WSGI, ASGI) and create the engine's server from them."""
    if not isinstance(http2_cleartext, bool):
        raise TypeError(f"invalid http2_cleartext {http2_cleartext!r}: must be True or False")
    _check_timeouts(
        read_header_timeout=read_header_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        idle_timeout=idle_timeout,
    )
    _check_limits(
        max_header_bytes=max_header_bytes,
        max_request_line_bytes=max_request_line_bytes,
        max_header_field_bytes=max_header_field_bytes,
        max_header_fields=max_header_fields,
    )
    return _gobind.Server(
        read_header_timeout=read_header_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        idle_timeout=idle_timeout,
        max_header_bytes=max_header_bytes,
        max_concurrent_calls=max_concurrent_calls,
        max_request_line_bytes=max_request_line_bytes,
        max_header_field_bytes=max_header_field_bytes,
        max_header_fields=max_header_fields,
        tls_cert_file=os.fspath(ssl_certfile) if ssl_certfile else "",
        tls_key_file=os.fspath(ssl_keyfile) if ssl_keyfile else "",
        http2_cleartext=http2_cleartext,
    )


def _check_handler(handler: object, target: str) -> None:
    if not callable(handler):
        raise TypeError(f"handler for {target!r} is not callable: {handler!r}")
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None)):
        raise TypeError(
            f"handler for {target!r} is an async function; gobind.Server handlers are plain functions "
            "(serve async apps with gobind.asgi)"
        )


def _listen_address(host: str, port: int, uds: Optional[str], fd: Optional[int]) -> str:
    """Return the engine's address for the arguments of start()."""
    if fd is not None:
        if uds is not None:
            raise ValueError("uds and fd cannot be given together")
        if not isinstance(fd, int) or isinstance(fd, bool) or fd < 0:
            raise ValueError(f"invalid fd {fd!r}: must be a descriptor number, 0 or more")
        return f"fd:{fd}"
    if uds is not None:
        return f"unix:{uds}"
    return _join_host_port(host, port)


# Functions called with the requested address ("fd:5", "127.0.0.1:0")
# each time a server of this process starts listening. The worker processes
# of the gobind command report to their supervisor through it that they serve.
_listening_hooks: List[Callable[[str], None]] = []


def _notify_listening(address: str) -> None:
    for hook in list(_listening_hooks):
        hook(address)


def _join_host_port(host: str, port: int) -> str:
    if not host:
        raise ValueError("invalid host '': give an address such as 127.0.0.1, or 0.0.0.0 for every interface")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port!r}: must be an integer from 0 to 65535")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _log_handler_error(error: BaseException, request: Request, outcome: Optional[str] = None) -> None:
    if outcome is not None:
        # The engine's read or write failed because the connection did, the
        # client stalled or its body was malformed: one line, no traceback.
        logger.info("Client %s during %s %s: %s", outcome, request.method, request.url, error)
        return
    logger.error(
        "Exception in handler for %s %s",
        request.method,
        request.url,
        exc_info=(type(error), error, error.__traceback__),
    )


def _log_access(remote: str, method: str, target: str, protocol: str, status: int, size: int, seconds: float) -> None:
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info('%s - "%s %s %s" %d %d %.2fms', remote, method, target, protocol, status, size, seconds * 1000)


def _log_engine_line(line: str) -> None:
    engine_logger.warning("%s", line)


def _configure_default_logging() -> None:
    """Give the gobind loggers a stderr handler when the application has not
    configured logging, as uvicorn does, so that start-up and access lines show."""
    root = logging.getLogger()
    if root.handlers or logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@atexit.register
def _drain_at_exit() -> None:
    # Go threads must leave Python before the interpreter finalizes; a Go
    # thread that takes the GIL during finalization hangs or crashes.
    if _gobind.forked():
        return
    for server in list(_live_servers):
        try:
            server.shutdown(min(server.shutdown_timeout, 5.0))
        except Exception:  # noqa: BLE001 - exiting anyway; report and go on
            logger.exception("Shutting down %r at exit failed", server)
    remaining = _gobind.close_calls(5.0)
    if remaining:
        # Such a call would take the GIL while the interpreter finalizes,
        # which ends its thread inside Go and aborts the process.
        logger.warning("Exiting without finalizing the interpreter: %s still running in Python",
                       plural(remaining, "handler call"))
        _exit_now(1)


def _forget_servers_after_fork() -> None:
    # The child cannot reach the parent's servers: the Go runtime did not
    # survive the fork, so the exit hook must not try to shut them down.
    _live_servers.clear()


os.register_at_fork(after_in_child=_forget_servers_after_fork)

# The module-level API of gohttplib: gobind.route, gobind.run, gobind.shutdown.
default_server: Optional[Server] = None


def _default() -> Server:
    global default_server
    if default_server is None:
        default_server = Server()
    return default_server


def route(pattern: str) -> Callable[[Handler], Handler]:
    """Register the decorated function on the default server."""
    return _default().route(pattern)


def run(host: str = "127.0.0.1", port: int = 8000, *, uds: Optional[str] = None) -> None:
    """Serve the default server's routes until Ctrl-C, SIGTERM or shutdown()."""
    _default().run(host, port, uds=uds)


def shutdown(timeout: Optional[float] = None) -> bool:
    """Shut the default server down gracefully; see Server.shutdown."""
    if default_server is None:
        return True
    return default_server.shutdown(timeout)
