"""WSGI (PEP 3333) applications on gobind's engine.

    import gobind.wsgi
    gobind.wsgi.serve(app, host="127.0.0.1", port=8000, threads=8)

Every request reaches the app with its path exactly as sent: the engine does
no path cleaning or redirects in front of it. See docs/wsgi.md for the
environ and the limits.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Optional, Sequence, Tuple

from . import _gobind
from ._server import Server

__all__ = ["FileWrapper", "WSGIHandler", "serve"]

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

logger = logging.getLogger("gobind")
errors_logger = logging.getLogger("gobind.wsgi.errors")

_wsgi_environ = _gobind.wsgi_environ
_wsgi_start = _gobind.wsgi_start

# Size of the reads that fill wsgi.input's buffer for readline().
_READ_CHUNK = 64 * 1024


class RequestBodyTooLarge(ValueError):
    """Raised by wsgi.input when the body exceeds the server's body limit."""


class _Input:
    """wsgi.input: the request body, read from the engine on demand.

    Reads stop at the end of the body (the engine never returns bytes past
    it). A body longer than ``limit`` bytes (0: no limit) raises
    RequestBodyTooLarge once the limit is passed.
    """

    __slots__ = ("_request", "_buffer", "_limit", "_total", "_ended")

    def __init__(self, request: _gobind.Request, limit: int) -> None:
        self._request = request
        self._buffer = b""
        self._limit = limit
        self._total = 0
        self._ended = False

    def _read_engine(self, size: int) -> bytes:
        if self._ended:
            return b""
        data = self._request.read(size)
        if size < 0 or len(data) < size:
            self._ended = True
        self._total += len(data)
        if self._limit and self._total > self._limit:
            raise RequestBodyTooLarge(f"request body exceeds the limit of {self._limit} bytes")
        return data

    def read(self, size: Optional[int] = -1) -> bytes:
        if size is None or size < 0:
            return self._read_all()
        if len(self._buffer) >= size:
            data = self._buffer[:size]
            self._buffer = self._buffer[size:]
            return data
        data = self._buffer + self._read_engine(size - len(self._buffer))
        self._buffer = b""
        return data

    def _read_all(self) -> bytes:
        if self._total == 0:
            # Nothing read yet: the engine reads the whole body in one call.
            return self._read_engine(-1)
        parts = [self._buffer]
        self._buffer = b""
        while True:
            chunk = self._read_engine(_READ_CHUNK)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def readline(self, size: Optional[int] = -1) -> bytes:
        if size is None:
            size = -1
        while True:
            end = self._buffer.find(b"\n") + 1
            if end == 0 and (size < 0 or len(self._buffer) < size) and not self._ended:
                chunk = self._read_engine(_READ_CHUNK)
                if chunk:
                    self._buffer += chunk
                    continue
            if end == 0:
                end = len(self._buffer)
            if 0 <= size < end:
                end = size
            line = self._buffer[:end]
            self._buffer = self._buffer[end:]
            return line

    def readlines(self, hint: Optional[int] = -1) -> list:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> "_Input":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _ErrorStream:
    """wsgi.errors: text written by apps goes to the ``gobind.wsgi.errors``
    logger, one record per line. One instance serves all requests; partial
    lines wait per thread until their newline or flush()."""

    def __init__(self) -> None:
        self._pending = threading.local()

    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        *lines, rest = pending.split("\n")
        for line in lines:
            errors_logger.error("%s", line)
        self._pending.text = rest
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        if rest:
            errors_logger.error("%s", rest)
        self._pending.text = ""


class FileWrapper:
    """wsgi.file_wrapper: iterates a file in blocks and closes it at the end
    of the response."""

    def __init__(self, filelike: Any, blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> "FileWrapper":
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class _Response:
    """State of one response: start_response, write() and the body rules.

    Headers go out with the first non-empty body chunk, or at the end of an
    empty response. A body longer than the app's Content-Length is cut
    there. Responses whose status forbids a body (1xx, 204, 304) send none.
    """

    __slots__ = ("writer", "status", "headers", "code", "sent", "remaining", "body_allowed", "defaults")

    def __init__(self, writer: _gobind.ResponseWriter, defaults: Sequence[Tuple[str, str]]) -> None:
        self.writer = writer
        self.status: Optional[str] = None
        self.headers: Optional[list] = None
        self.code = 0
        self.sent = False
        self.remaining = -1
        self.body_allowed = True
        self.defaults = defaults

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if type(status) is not str:
            raise TypeError(f"status must be str, not {type(status).__name__}: {status!r}")
        code = status[:3]
        if len(status) < 4 or status[3] != " " or not code.isdigit():
            raise ValueError(f"invalid status {status!r}: expected a 3-digit code, a space and a reason, such as '200 OK'")
        self.code = int(code)
        self.status = status
        self.headers = headers
        return self.write

    def begin(self) -> None:
        """Send the status line and headers (on the first body bytes)."""
        if self.status is None:
            raise AssertionError("the application returned body data before calling start_response()")
        headers = self.headers
        if self.defaults:
            present = {name.lower() for name, _ in headers}
            headers = headers + [pair for pair in self.defaults if pair[0].lower() not in present]
        self.remaining = _wsgi_start(self.writer, self.code, headers)
        self.sent = True
        code = self.code
        self.body_allowed = code >= 200 and code != 204 and code != 304

    def send(self, data: bytes, flush: bool) -> None:
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if not self.sent:
            self.begin()
        if not self.body_allowed:
            return
        remaining = self.remaining
        if remaining >= 0:
            if len(data) > remaining:
                data = data[:remaining]
            self.remaining = remaining = remaining - len(data)
            if not data:
                return
            # The declared body is complete: the engine sends it at the end.
            flush = flush and remaining > 0
        self.writer.write(data)
        if flush:
            self.writer.flush()

    def write(self, data: bytes) -> None:
        """The write() callable that start_response returns."""
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if data:
            self.send(data, True)


class WSGIHandler:
    """A gobind handler ``handler(w, req)`` that runs a WSGI app.

    ``root_path`` is the mount prefix (SCRIPT_NAME). ``default_headers`` are
    added to every response that lacks a header of the same name.
    ``max_body_bytes`` (0: no limit) answers larger request bodies with 413.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        root_path: str = "",
        default_headers: Sequence[Tuple[str, str]] = (),
        max_body_bytes: int = 0,
        multithread: bool = True,
        server_name: Optional[str] = None,
        server_port: Optional[str] = None,
    ) -> None:
        if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
            raise ValueError(f"invalid root path {root_path!r}: must start with '/' and not end with '/'")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.default_headers = tuple(default_headers)
        self._script_name = root_path.encode("utf-8")
        self._base = {
            "SCRIPT_NAME": self._script_name.decode("latin-1"),
            "wsgi.version": (1, 0),
            "wsgi.errors": _ErrorStream(),
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        if server_name is not None:
            self._base["SERVER_NAME"] = server_name
            self._base["SERVER_PORT"] = server_port or "80"

    def __call__(self, writer: _gobind.ResponseWriter, request: _gobind.Request) -> None:
        limit = self.max_body_bytes
        if limit and (request.content_length or 0) > limit:
            _reject_large_body(writer, limit)
            return
        environ = _wsgi_environ(request, self._base, self._script_name)
        environ["wsgi.input"] = _Input(request, limit)
        response = _Response(writer, self.default_headers)
        try:
            result = self.app(environ, response.start_response)
        except RequestBodyTooLarge:
            _reject_large_body(writer, limit)
            return
        try:
            self._send_body(response, result)
        except ConnectionError as error:
            logger.info("Client went away during %s %s: %s", environ["REQUEST_METHOD"], request.url, error)
        except RequestBodyTooLarge:
            if response.sent:
                raise
            _reject_large_body(writer, limit)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _send_body(response: _Response, result: Iterable[bytes]) -> None:
        send = response.send
        if type(result) is list or type(result) is tuple:
            # Every chunk exists already: the engine sends them at the end,
            # in as few writes as fit its buffer.
            for chunk in result:
                if chunk:
                    send(chunk, False)
        else:
            # Chunks of other iterables leave as soon as they are produced.
            for chunk in result:
                if chunk:
                    send(chunk, True)
        if not response.sent:
            response.begin()


def _reject_large_body(writer: _gobind.ResponseWriter, limit: int) -> None:
    writer.write_header(413)
    writer.headers["Content-Type"] = "text/plain; charset=utf-8"
    writer.headers["Connection"] = "close"
    writer.write(f"request body exceeds the limit of {limit} bytes\n")


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    uds: Optional[str] = None,
    threads: int = 1,
    root_path: str = "",
    default_headers: Sequence[Tuple[str, str]] = (),
    max_body_bytes: int = 0,
    **server_options: Any,
) -> None:
    """Serve a WSGI app until Ctrl-C, SIGTERM or shutdown.

    ``threads`` bounds how many requests run the app at once.
    ``server_options`` are passed to gobind.Server (timeouts in seconds,
    ``max_header_bytes``, ``shutdown_timeout``, ``access_log``).
    """
    server = make_server(
        app,
        threads=threads,
        root_path=root_path,
        default_headers=default_headers,
        max_body_bytes=max_body_bytes,
        uds=uds,
        **server_options,
    )
    server.run(host, port, uds=uds)


def make_server(
    app: WSGIApp,
    *,
    threads: int = 1,
    root_path: str = "",
    default_headers: Sequence[Tuple[str, str]] = (),
    max_body_bytes: int = 0,
    uds: Optional[str] = None,
    **server_options: Any,
) -> Server:
    """Create a gobind.Server that sends every request to a WSGI app."""
    server = Server(threads=threads, **server_options)
    server_name = None
    if uds is not None:
        server_name = "localhost"
    handler = WSGIHandler(
        app,
        root_path=root_path,
        default_headers=default_headers,
        max_body_bytes=max_body_bytes,
        multithread=threads > 1,
        server_name=server_name,
    )
    server.handle_all(handler)
    return server

