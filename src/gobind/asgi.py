"""ASGI 3 on gobind's engine: HTTP and lifespan, on one event loop.

    import gobind.asgi
    from myproject import app      # FastAPI, Starlette, any ASGI 3 app

    gobind.asgi.serve(app, host="127.0.0.1", port=8000)

Go's net/http parses requests and writes responses. Each request waits in
Go, as a goroutine, until the event loop takes it from the engine's queue,
so a waiting request occupies no OS thread. The loop is woken through an
eventfd and takes every ready event per wake-up. Body reads and response
writes are submitted to Go without blocking and complete as later events;
a streamed response waits while more than ``_HIGH_WATER`` bytes are
unsent, so a slow client does not make the server buffer it whole.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import logging
import os
import signal
import stat
import threading
import time
from collections import deque
from typing import Any, Awaitable, Callable, Optional

from . import _gobind, _server
from ._server import (
    _check_limits,
    _check_timeouts,
    _configure_default_logging,
    _exit_if_held,
    _listen_address,
    _log_access,
    _log_engine_line,
    _log_shutting_down,
    _native_server,
    _notify_listening,
    plural,
)

__all__ = ["AsgiServer", "ClientDisconnected", "is_asgi_app", "serve"]

logger = logging.getLogger("gobind")
access_logger = logging.getLogger("gobind.access")

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Exit code of serve() when the application's lifespan startup fails, as
# uvicorn's.
STARTUP_FAILURE = 3

_EVENT_REQUEST = _gobind.EVENT_REQUEST
_EVENT_BODY = _gobind.EVENT_BODY
_EVENT_WRITTEN = _gobind.EVENT_WRITTEN
_OP_WRITE = _gobind.OP_WRITE
_OP_SENDFILE = _gobind.OP_SENDFILE
_OP_TRAILERS = _gobind.OP_TRAILERS
_OP_ABORT = _gobind.OP_ABORT
_FLUSH = _gobind.WRITE_FLUSH
_FINISH = _gobind.WRITE_FINISH
_EOF = _gobind.STATUS_EOF

# Bytes of one body read requested from Go.
_READ_SIZE = 64 * 1024

# A streamed response's send() waits while more than this many bytes, or
# more than _MAX_PENDING_WRITES writes, are submitted to Go and not yet
# written to the connection.
_HIGH_WATER = 64 * 1024
_MAX_PENDING_WRITES = 8

# Response states of a call.
_START, _BODY, _TRAILERS, _DONE = range(4)


def _final_status(status: Any) -> int:
    """Return the status of an 'http.response.start' message as an int,
    raising TypeError or ValueError for one that is not a final status."""
    if not isinstance(status, int) or isinstance(status, bool):
        raise TypeError(f"invalid status {status!r} in 'http.response.start': must be an int, such as 200")
    if not 200 <= status <= 999:
        raise ValueError(f"invalid status {status!r} in 'http.response.start': must be 200-999")
    return int(status)


_INTERNAL_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]


class ClientDisconnected(OSError):
    """Raised by send() once the client has gone away."""


def is_asgi_app(obj: object) -> bool:
    """Tell whether obj looks like an ASGI 3 application: a coroutine
    function, an object whose class has an async ``__call__``, or such a
    class itself."""
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj if inspect.isclass(obj) else type(obj), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


async def _in_thread(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any) -> Any:
    """Run function(*args) on a new daemon thread and return its result."""
    future = loop.create_future()

    def settle(result: Any, error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = function(*args)
        except BaseException as caught:  # noqa: BLE001 - handed to the awaiting task
            error = caught
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop closed after a forced exit, and no task waits for the result

    threading.Thread(target=run, name="gobind-shutdown", daemon=True).start()
    return await future


def _is_cancellation(error: BaseException) -> bool:
    """Return whether error is a cancellation, or an exception group
    (as anyio's task groups raise) of cancellations only."""
    if isinstance(error, asyncio.CancelledError):
        return True
    inner = getattr(error, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(_is_cancellation(item) for item in inner)


# The gobind_status values of a write event that the client caused:
# GOBIND_ERR_TIMEOUT and GOBIND_ERR_IO.
_CLIENT_FAILURES = {5: "timed out", 6: "went away"}


def _from_disconnect(error: BaseException) -> bool:
    """Return whether error, or an exception it was raised from or while
    handling, is a cancellation or ClientDisconnected. Frameworks wrap
    ClientDisconnected in their own error (Starlette's ClientDisconnect)."""
    current: Optional[BaseException] = error
    for _ in range(8):  # a bound, in case of a cycle in the chain
        if current is None:
            return False
        if isinstance(current, (asyncio.CancelledError, ClientDisconnected)):
            return True
        current = current.__cause__ or current.__context__
    return False


class _Call:
    """One HTTP request and its response, between the app and the engine."""

    __slots__ = (
        "server",
        "handle",
        "scope",
        "pending_body",
        "body_complete",
        "disconnected",
        "receive_waiter",
        "reading",
        "disconnect_deferred",
        "unclaimed",
        "state",
        "status",
        "headers",
        "trailers",
        "started",
        "pending_sizes",
        "pending_bytes",
        "write_waiter",
        "write_error",
        "client_failure",
        "size",
        "start_time",
        "task",
    )

    def __init__(self, server: "AsgiServer", handle: int, scope: Scope, body: bytes, body_complete: bool) -> None:
        self.server = server
        self.handle = handle
        self.scope = scope
        # Body bytes that Go read ahead: the whole body when body_complete.
        self.pending_body: Optional[bytes] = body if body or body_complete else None
        self.body_complete = body_complete
        self.disconnected = False
        self.receive_waiter: Optional[asyncio.Future] = None
        self.reading = False  # a body read is submitted and its event has not come
        self.disconnect_deferred = False
        self.unclaimed: Optional[Message] = None
        self.state = _START
        self.status = 200
        self.headers: Any = None
        self.trailers = False
        self.started = False  # whether the status and header went to Go
        self.pending_sizes: deque = deque()
        self.pending_bytes = 0
        self.write_waiter: Optional[asyncio.Future] = None
        self.write_error: Optional[str] = None
        # "went away" or "timed out" when a write failed because of the
        # client, for the log line.
        self.client_failure: Optional[str] = None
        self.size = 0
        self.start_time = time.perf_counter() if server.access_log else 0.0
        self.task: Optional[asyncio.Task] = None

    # receive()

    async def receive(self) -> Message:
        body = self.pending_body
        if body is not None:
            self.pending_body = None
            return {"type": "http.request", "body": body, "more_body": not self.body_complete}
        event = self.unclaimed
        if event is not None:
            self.unclaimed = None
            return event
        if self.disconnected or self.state == _DONE:
            return {"type": "http.disconnect"}
        if self.receive_waiter is not None:
            raise RuntimeError("receive() called while another receive() of the same request is waiting")
        waiter = self.server.loop.create_future()
        if not self.body_complete and not self.reading:
            self.server.queue.read(self.handle, _READ_SIZE)
            self.reading = True
        self.receive_waiter = waiter
        try:
            return await waiter
        finally:
            self.receive_waiter = None

    def on_body(self, status: int, data: bytes, message: Optional[str]) -> None:
        self.reading = False
        if status == 0 or status == _EOF:
            self.body_complete = status == _EOF
            event = {"type": "http.request", "body": data, "more_body": status != _EOF}
        else:
            logger.debug("Reading the body of %s %s failed: %s", self.scope["method"], self.scope["path"], message)
            self.disconnected = True
            event = {"type": "http.disconnect"}
        waiter = self.receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
        else:
            # The receive() that asked for this chunk was cancelled; the
            # next one gets it.
            self.unclaimed = event
        if self.disconnect_deferred:
            self.disconnect_deferred = False
            self.on_disconnect()

    def on_disconnect(self) -> None:
        if self.reading:
            # The pending read ends with the body's last bytes or an error, by
            # the read timeout at the latest. The app gets its event first.
            self.disconnect_deferred = True
            return
        self.disconnected = True
        self._resolve_receive({"type": "http.disconnect"})
        self._resolve_write()

    def _resolve_receive(self, event: Message) -> None:
        waiter = self.receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(event)

    # send()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self.state
        if state == _START:
            if kind != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{kind}'.")
            if self.disconnected:
                raise ClientDisconnected("client disconnected")
            self.status = _final_status(message["status"])
            self.headers = message.get("headers", ())
            self.trailers = bool(message.get("trailers", False))
            self.state = _BODY
            return

        if self.disconnected or self.write_error is not None:
            raise ClientDisconnected(self.write_error or "client disconnected")
        if state == _BODY and kind == "http.response.body":
            await self._send_body(message.get("body", b""), message.get("more_body", False))
        elif state == _BODY and kind == "http.response.pathsend":
            path = message["path"]
            # A bad path raises in the app's send(), while a 500 can still be
            # sent. Opening a FIFO would wait for a writer.
            info = os.stat(path)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(errno.EISDIR, "http.response.pathsend needs a file, not a directory", path)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, "http.response.pathsend needs a regular file", path)
            self.size += info.st_size
            self._submit(_OP_SENDFILE, os.fsencode(path), 0)
            self._complete()
        elif state == _TRAILERS and kind == "http.response.trailers":
            more = message.get("more_trailers", False)
            self.headers = message.get("headers", ())
            self.started = False
            self._submit(_OP_TRAILERS, None, 0 if more else _FINISH)
            self.started = True
            if not more:
                self._complete()
        elif state == _DONE:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, after response already completed.")
        else:
            expected = "http.response.trailers" if state == _TRAILERS else "http.response.body"
            raise RuntimeError(f"Expected ASGI message '{expected}', but got '{kind}'.")

    async def _send_body(self, body: bytes, more_body: bool) -> None:
        self.size += len(body)
        if not more_body and not self.trailers:
            self._submit(_OP_WRITE, body, _FINISH)
            self._complete()
            return
        if not more_body:
            self.state = _TRAILERS
        self._submit(_OP_WRITE, body, _FLUSH)
        self.pending_sizes.append(len(body))
        self.pending_bytes += len(body)
        if self.pending_bytes > _HIGH_WATER or len(self.pending_sizes) >= _MAX_PENDING_WRITES:
            waiter = self.server.loop.create_future()
            self.write_waiter = waiter
            try:
                await waiter
            finally:
                self.write_waiter = None
            if self.disconnected or self.write_error is not None:
                raise ClientDisconnected(self.write_error or "client disconnected")

    def _submit(self, kind: int, body: Any, flags: int) -> None:
        server = self.server
        if self.started:
            server.queue.defer(self.handle, kind, 0, None, body, flags)
        else:
            server.queue.defer(self.handle, kind, self.status, self.headers, body, flags)
            self.started = True
        if not server.flush_scheduled:
            server.flush_scheduled = True
            server.loop.call_soon(server.flush)

    def on_written(self, status: int, message: Optional[str]) -> None:
        if self.pending_sizes:
            self.pending_bytes -= self.pending_sizes.popleft()
        if status != 0:
            self.write_error = message or "writing the response failed"
            if status in _CLIENT_FAILURES:
                self.client_failure = _CLIENT_FAILURES[status]
            self._resolve_write()
        elif self.pending_bytes <= _HIGH_WATER // 2 and len(self.pending_sizes) < _MAX_PENDING_WRITES:
            self._resolve_write()

    def _resolve_write(self) -> None:
        waiter = self.write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _complete(self) -> None:
        self.state = _DONE
        self._resolve_receive({"type": "http.disconnect"})
        if self.server.access_log:
            self.server.log_access(self)

    # The application task

    async def run(self) -> None:
        server = self.server
        try:
            result = await server.app(self.scope, self.receive, self.send)
        except BaseException as error:  # noqa: BLE001 - any app failure becomes a 500 or a reset
            if server.forced:
                raise
            self._fail("Exception in ASGI application", error)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if result is not None:
                logger.error("ASGI callable returned %r; expected None", result)
            if self.state == _START:
                self._fail("ASGI callable returned without starting response.", None)
            elif self.state != _DONE:
                self._fail("ASGI callable returned without completing response.", None)
        finally:
            server.calls.pop(self.handle, None)
            self._resolve_receive({"type": "http.disconnect"})

    def _fail(self, reason: str, error: Optional[BaseException]) -> None:
        client_gone = error is None or _from_disconnect(error)
        if self.client_failure is not None and client_gone:
            # One line without a traceback, as for handlers. The write can
            # fail before the disconnect event arrives.
            logger.info(
                "Client %s during %s %s: %s", self.client_failure, self.scope["method"], self.scope["path"], self.write_error
            )
        elif self.disconnected and client_gone:
            logger.debug("%s %s ended after the client disconnected", self.scope["method"], self.scope["path"])
        elif self.server.cancelling and error is not None and _is_cancellation(error):
            logger.warning("%s %s cancelled by the shutdown", self.scope["method"], self.scope["path"])
        else:
            exc_info = (type(error), error, error.__traceback__) if error is not None else None
            logger.error("%s", reason, exc_info=exc_info)
        if self.state == _DONE or self.disconnected:
            self._abort()
            return
        if self.started:
            self._abort()
            return
        # The status and header were never sent, so the client gets a 500.
        self.status = 500
        self.headers = _INTERNAL_ERROR_HEADERS
        self.size = len(b"Internal Server Error")
        self._submit(_OP_WRITE, b"Internal Server Error", _FINISH)
        self._complete()

    def _abort(self) -> None:
        # A response cut short is logged with the bytes sent so far, once
        # its header went out.
        if self.started and self.state != _DONE and self.server.access_log:
            self.server.log_access(self)
        self.started = True
        self._submit(_OP_ABORT, None, 0)
        self.state = _DONE


class AsgiServer:
    """An ASGI application served by the engine on the running event loop.

    ``await start(...)`` runs the lifespan startup, binds and serves;
    ``await shutdown()`` stops accepting, lets in-flight requests finish
    for up to ``shutdown_timeout`` seconds, then runs the lifespan shutdown.
    Timeouts are in seconds and mean what they mean for gobind.Server.
    ``max_concurrency`` bounds the requests inside the app at once; others
    wait in Go (0: no bound). ``max_body_bytes`` bounds each request body
    (0: no bound): a larger Content-Length gets 413 before the app sees the
    request, and a chunked body gets 413 when it passes the bound, while the
    app receives ``http.disconnect``.
    """

    def __init__(
        self,
        app: App,
        *,
        root_path: str = "",
        lifespan: str = "auto",
        access_log: bool = True,
        read_header_timeout: float = 10.0,
        read_timeout: float = 60.0,
        write_timeout: float = 60.0,
        idle_timeout: float = 75.0,
        max_header_bytes: int = 64 * 1024,
        max_concurrency: int = 0,
        shutdown_timeout: float = 30.0,
        max_request_line_bytes: int = 8190,
        max_header_field_bytes: int = 8190,
        max_header_fields: int = 100,
        max_body_bytes: int = 0,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        http2_cleartext: bool = False,
    ) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"invalid lifespan {lifespan!r}: expected 'auto', 'on' or 'off'")
        if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
            raise ValueError(f"invalid root_path {root_path!r}: must start with '/' and not end with '/'")
        _check_timeouts(shutdown_timeout=shutdown_timeout)
        _check_limits(lowest=0, max_concurrency=max_concurrency, max_body_bytes=max_body_bytes)  # 0: no bound
        self.max_body_bytes = max_body_bytes
        self.app = app
        self.root_path = root_path
        self.lifespan = _Lifespan(app, lifespan)
        self.access_log = access_log
        self.shutdown_timeout = shutdown_timeout
        self.calls: dict[int, _Call] = {}
        self.address: Optional[str] = None
        self.loop: asyncio.AbstractEventLoop
        self._native = _native_server(
            max_concurrent_calls=max_concurrency,
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
        # Go logs the responses it makes itself, such as 408 for a body read that timed out.
        self._native.set_access_log(_log_access if access_log else None)
        self._native.set_log(_log_engine_line)
        self._wake_fd = -1
        self.queue: Any = None
        self.flush_scheduled = False
        self._stopped = False
        # Set by a second SIGINT or SIGTERM in serve(): the app's tasks end
        # without error reports.
        self.forced = False
        # Set when the shutdown's timeout cancels the tasks of the app.
        self.cancelling = False

    @property
    def url(self) -> Optional[str]:
        """The bound address as a URL, or None before start."""
        if self.address is None or self.address.startswith("unix:"):
            return self.address
        return f"{self._scheme}://{self.address}"

    async def start(
        self, host: str = "127.0.0.1", port: int = 8000, *, uds: Optional[str] = None, fd: Optional[int] = None
    ) -> bool:
        """Run the lifespan startup, then bind and serve. Returns False,
        without binding, when the startup failed."""
        self.loop = asyncio.get_running_loop()
        if not await self.lifespan.startup():
            return False
        scope_template = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "root_path": self.root_path,
            "extensions": {"http.response.pathsend": {}, "http.response.trailers": {}},
        }
        if self.lifespan.state is not None:
            scope_template["state"] = self.lifespan.state
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.queue = _gobind.AsgiQueue(_gobind.server_handle(self._native), self._wake_fd, scope_template, self.root_path)
        self.queue.set_max_body_bytes(self.max_body_bytes)
        self.loop.add_reader(self._wake_fd, self._on_wake)
        address = _listen_address(host, port, uds, fd)
        self.address = self._native.start(address)
        logger.info("Serving on %s (pid %d, ASGI on %s)", self.url, os.getpid(), type(self.loop).__module__.split(".")[0])
        _notify_listening(address)
        return True

    def flush(self) -> None:
        """Submit the response operations of this loop iteration to Go in
        one call, which saves the engine a thread hand-off per operation."""
        self.flush_scheduled = False
        self.queue.flush()

    def _on_wake(self) -> None:
        calls = self.calls
        copy_state = self.lifespan.state is not None
        for kind, handle, status, first, second in self.queue.drain():
            if kind == _EVENT_REQUEST:
                if copy_state:
                    first["state"] = first["state"].copy()
                call = _Call(self, handle, first, second, status == 1)
                calls[handle] = call
                call.task = self.loop.create_task(call.run())
                continue
            call = calls.get(handle)
            if call is None:
                continue
            if kind == _EVENT_BODY:
                call.on_body(status, first, second)
            elif kind == _EVENT_WRITTEN:
                call.on_written(status, second)
            else:
                call.on_disconnect()

    def log_access(self, call: _Call) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        scope = call.scope
        client = scope.get("client")
        remote = f"{client[0]}:{client[1]}" if client else "-"
        query = scope["query_string"]
        target = scope["raw_path"].decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        version = scope["http_version"]
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %d %.2fms',
            remote,
            scope["method"],
            target,
            # Go's spelling, as in the lines of the responses Go makes itself.
            "2.0" if version == "2" else version,
            call.status,
            # net/http drops the body of a response to HEAD: none of it is sent.
            0 if scope["method"] == "HEAD" else call.size,
            (time.perf_counter() - call.start_time) * 1000,
        )

    async def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Stop accepting, let in-flight requests finish for up to timeout
        seconds (default shutdown_timeout), close what is left, then run
        the lifespan shutdown. Returns False when the timeout cut requests off."""
        if self._stopped:
            return True
        self._stopped = True
        if timeout is None:
            timeout = self.shutdown_timeout
        deadline = time.monotonic() + timeout
        graceful = True
        if self.address is not None:
            _log_shutting_down(*self._native.stats())
            # The engine's shutdown blocks until in-flight requests end, and
            # they need this loop to end, so it waits on another thread. Not
            # on the loop's default executor, which the app may keep busy.
            graceful = await _in_thread(self.loop, self._native.shutdown, timeout)
            if not graceful:
                logger.warning("Graceful shutdown timed out after %.1f s; closed the remaining connections", timeout)
            else:
                graceful = await self._finish_calls(deadline - time.monotonic(), timeout)
            # A closed queue delivers no event, and a drain of it fails.
            self.loop.remove_reader(self._wake_fd)
            self.queue.close()
            await self._cancel_calls()
        await self.lifespan.shutdown()
        self._release()
        logger.info("Stopped")
        return graceful

    async def _finish_calls(self, remaining: float, timeout: float) -> bool:
        # Every response has ended, but an app may go on after its last
        # send, as Starlette's background tasks do: they get the rest of
        # the graceful timeout.
        tasks = [call.task for call in self.calls.values() if call.task is not None]
        if not tasks:
            return True
        logger.info("Waiting for %s that went on after %s response", plural(len(tasks), "application task"),
                    "its" if len(tasks) == 1 else "their")
        _, pending = await asyncio.wait(tasks, timeout=max(remaining, 0.0))
        if pending:
            logger.warning("Graceful shutdown timed out after %.1f s; cancelling %s", timeout,
                           plural(len(pending), "application task"))
        return not pending

    async def _cancel_calls(self) -> None:
        self.cancelling = True
        tasks = [call.task for call in self.calls.values() if call.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    def close(self) -> None:
        """Close the listener and every connection at once."""
        self._native.close()

    def abandon(self) -> None:
        """After close(), when the loop can no longer run a shutdown: end the
        requests that wait for the app and release the engine's server."""
        self._stopped = True
        if self._wake_fd >= 0:
            self.loop.remove_reader(self._wake_fd)
            self.queue.close()
        self._release()

    def _release(self) -> None:
        self._native.release()
        if self._wake_fd >= 0:
            os.close(self._wake_fd)
            self._wake_fd = -1


class _Lifespan:
    """The lifespan protocol: startup and shutdown messages to the app,
    which runs as one task for the server's life."""

    def __init__(self, app: App, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: Optional[dict] = {} if mode != "off" else None
        self.task: Optional[asyncio.Task] = None
        self.messages: Optional[asyncio.Queue] = None
        self.startup_done: Optional[asyncio.Event] = None
        self.shutdown_done: Optional[asyncio.Event] = None
        self.startup_complete = False
        self.startup_failed = False
        self.shutdown_failed = False
        self.unsupported = False
        self.interrupted = False  # ended by a forced exit
        self.failure_message = ""

    async def startup(self) -> bool:
        if self.mode == "off":
            return True
        self.messages = asyncio.Queue()
        self.startup_done = asyncio.Event()
        self.shutdown_done = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._main())
        logger.info("Waiting for application startup.")
        await self.messages.put({"type": "lifespan.startup"})
        await self.startup_done.wait()
        if self.interrupted:
            raise _ForcedExit(1)  # uvloop may run this before the exit leaves the loop
        if self.startup_failed or (self.unsupported and self.mode == "on"):
            if self.startup_failed and self.failure_message:
                logger.error("%s", self.failure_message)
            logger.error("Application startup failed. Exiting.")
            return False
        if not self.startup_complete:
            # The app returned without sending lifespan.startup.complete,
            # so it does not support lifespan, which "auto" allows.
            if not self.unsupported:
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            self.unsupported = True
            self.state = None
            return True
        logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if self.task is None or self.unsupported or self.task.done():
            return
        logger.info("Waiting for application shutdown.")
        await self.messages.put({"type": "lifespan.shutdown"})
        await self.shutdown_done.wait()
        if self.interrupted:
            return
        if self.shutdown_failed:
            logger.error("Application shutdown failed: %s", self.failure_message)
        else:
            logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except (asyncio.CancelledError, _ForcedExit):
            # Only a forced exit cancels the lifespan task or raises there.
            self.interrupted = True
            raise
        except BaseException as error:  # noqa: BLE001 - reported as the lifespan's outcome
            if self.startup_failed or self.shutdown_failed:
                return
            self.unsupported = True
            if self.mode == "auto" and not self.startup_done.is_set():
                logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                logger.error("Exception in 'lifespan' protocol", exc_info=(type(error), error, error.__traceback__))
        finally:
            self.startup_done.set()
            self.shutdown_done.set()

    async def _receive(self) -> Message:
        return await self.messages.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.startup_complete = True
            self.startup_done.set()
        elif kind == "lifespan.startup.failed":
            self.startup_failed = True
            self.failure_message = message.get("message", "")
            self.startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self.shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self.shutdown_failed = True
            self.failure_message = message.get("message", "")
            self.shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message '{kind}'.")


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name not in ("auto", "asyncio", "uvloop"):
        raise ValueError(f"invalid loop {name!r}: expected 'auto', 'asyncio' or 'uvloop'")
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ImportError("loop 'uvloop' requested but uvloop is not installed: pip install uvloop") from None
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    uds: Optional[str] = None,
    fd: Optional[int] = None,
    root_path: str = "",
    lifespan: str = "auto",
    loop: str = "auto",
    threads: int = 1,
    access_log: bool = True,
    read_header_timeout: float = 10.0,
    read_timeout: float = 60.0,
    write_timeout: float = 60.0,
    idle_timeout: float = 75.0,
    max_header_bytes: int = 64 * 1024,
    max_concurrency: int = 0,
    shutdown_timeout: float = 30.0,
    **server_options: Any,
) -> None:
    """Serve an ASGI 3 app until SIGINT or SIGTERM, then shut down gracefully.

    ``loop`` is "auto" (uvloop when installed, else asyncio), "asyncio" or
    "uvloop". ``lifespan`` is "auto" (run it when the app supports it),
    "on" (a failing lifespan is fatal) or "off". A failed startup logs
    "Application startup failed" and raises SystemExit(3). ``threads`` is
    accepted for symmetry with the WSGI interface and must be 1: the app
    runs on the event loop's thread. Other options are those of AsgiServer.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads != 1:
        raise ValueError(f"invalid threads {threads!r} for an ASGI app: it runs on one event loop thread")
    if not callable(app):
        raise TypeError(f"ASGI app is not callable: {app!r}")
    factory = _loop_factory(loop)
    _configure_default_logging()
    server = AsgiServer(
        app,
        root_path=root_path,
        lifespan=lifespan,
        access_log=access_log,
        read_header_timeout=read_header_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        idle_timeout=idle_timeout,
        max_header_bytes=max_header_bytes,
        max_concurrency=max_concurrency,
        shutdown_timeout=shutdown_timeout,
        **server_options,
    )
    event_loop = factory()
    signals = _Signals(server, event_loop)
    executor_shutdown: Optional[asyncio.Task] = None
    try:
        asyncio.set_event_loop(event_loop)
        started = event_loop.run_until_complete(_serve_until(server, signals.stop, host, port, uds, fd))
        event_loop.run_until_complete(event_loop.shutdown_asyncgens())
        # Waits for the jobs of loop.run_in_executor. A second signal ends this
        # wait and the process, without joining those threads.
        executor_shutdown = event_loop.create_task(event_loop.shutdown_default_executor())
        event_loop.run_until_complete(_wait_logged(executor_shutdown))
    except _ForcedExit:
        # A cancelled shutdown_default_executor joins the executor's threads
        # before it returns, so it is left alone.
        _cancel_all(event_loop, keep=executor_shutdown)
        server.abandon()
        _exit_if_held()
        raise
    finally:
        event_loop.close()
        asyncio.set_event_loop(None)
        signals.restore()
    if not started:
        raise SystemExit(STARTUP_FAILURE)


async def _wait_logged(executor_shutdown: asyncio.Task) -> None:
    # A job that outlasts a second gets a log line, which explains why the
    # process has not ended yet.
    done, _ = await asyncio.wait({executor_shutdown}, timeout=1.0)
    if not done:
        logger.info("Waiting for the jobs of the event loop's executor (run_in_executor) to end; "
                    "a second signal stops the wait")
    # Shielded: cancelling this wait must not cancel the shutdown.
    await asyncio.shield(executor_shutdown)


def _cancel_all(loop: asyncio.AbstractEventLoop, keep: Optional[asyncio.Task] = None) -> None:
    # After a forced exit: cancel every task and give them a second to end.
    # The app task that the exit ended is not reported as an unretrieved
    # error. A later signal cuts the second short.
    def report(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if not isinstance(context.get("exception"), _ForcedExit):
            loop.default_exception_handler(context)

    loop.set_exception_handler(report)
    tasks = asyncio.all_tasks(loop) - {keep}
    for task in tasks:
        task.cancel()
    if tasks:
        try:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
        except _ForcedExit:
            pass


class _ForcedExit(SystemExit):
    """Raised by a second SIGINT or SIGTERM wherever the main thread is, the
    app's own code included, so that an app that blocks the event loop
    cannot hold the process."""


class _Signals:
    """The SIGINT and SIGTERM handlers of serve(), installed from the loop's
    creation to its close when serve() runs in the main thread.

    They are Python-level handlers, not loop.add_signal_handler, because
    those run only when the loop runs: an app that blocks the loop would
    hold off every signal. The first signal sets ``stop``, which starts the
    graceful shutdown. A second closes every connection and raises
    _ForcedExit wherever the main thread is, the app's code included.
    """

    def __init__(self, server: AsgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.stop = asyncio.Event()
        self.count = 0
        self.previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, frame: object) -> None:
        if _server.supervised:
            if signum == signal.SIGINT:
                # The supervisor's forced stop, which may be handled before
                # its SIGTERM: Python runs pending handlers by signal number.
                self.count = max(self.count, 1)
            elif self.count:
                return  # the same request again, from systemd and the supervisor
        self.count += 1
        if self.count == 1:
            self.loop.call_soon_threadsafe(self.stop.set)
            return
        if not self.server.forced:
            logger.warning("Second interrupt: closing all connections now")
            self.server.forced = True
            self.server.close()
        # Raised again by each later signal, in case app code caught it.
        raise _ForcedExit(1)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()


async def _serve_until(
    server: AsgiServer, stop: asyncio.Event, host: str, port: int, uds: Optional[str], fd: Optional[int]
) -> bool:
    try:
        if not await server.start(host, port, uds=uds, fd=fd):
            return False
    except BaseException:
        await server.shutdown()
        raise
    await stop.wait()
    await server.shutdown()
    return True
