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
from ._server import Server, _check_limits

__all__ = ["FileWrapper", "RequestBodyTooLarge", "WSGIHandler", "make_server", "serve"]

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

logger = logging.getLogger("gobind")
errors_logger = logging.getLogger("gobind.wsgi.errors")

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
    """wsgi.file_wrapper. The server sends a regular file that has a
    descriptor from Go; any other file object is iterated in blocks. The
    file is closed at the end of the response."""

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


def _check_default_header(header: Any) -> Tuple[str, str]:
    if not isinstance(header, (tuple, list)) or len(header) != 2:
        raise TypeError(f"invalid default header {header!r}: must be a (name, value) pair")
    name, value = header
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"invalid default header {header!r}: name and value must be str")
    # The engine's own header rules: a token name, and no CR, LF or NUL in the value.
    try:
        _gobind.Headers([(name, "")])
    except ValueError:
        raise ValueError(f"invalid default header name {name!r}") from None
    try:
        _gobind.Headers([("X", value)])
    except ValueError:
        raise ValueError(f"invalid default header value {value!r}: contains CR, LF or NUL") from None
    return name, value


class WSGIHandler:
    """A gobind handler ``handler(w, req)`` that runs a WSGI app.

    ``root_path`` is the mount prefix (SCRIPT_NAME). ``default_headers`` are
    added to every response that lacks a header of the same name.
    ``max_body_bytes`` (0: no limit) rejects larger request bodies with 413.
    ``multithread`` and ``multiprocess`` are the environ's flags of the same
    names.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        root_path: str = "",
        default_headers: Sequence[Tuple[str, str]] = (),
        max_body_bytes: int = 0,
        multithread: bool = True,
        multiprocess: bool = False,
    ) -> None:
        if not isinstance(root_path, str):
            raise TypeError(f"invalid root path {root_path!r}: must be a str")
        if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
            raise ValueError(f"invalid root path {root_path!r}: must start with '/' and not end with '/'")
        _check_limits(lowest=0, max_body_bytes=max_body_bytes)  # 0: no limit
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.default_headers = tuple(_check_default_header(header) for header in default_headers)
        self._script_name = root_path.encode("utf-8")
        self._base = {
            "SCRIPT_NAME": self._script_name.decode("latin-1"),
            "wsgi.version": (1, 0),
            "wsgi.errors": _ErrorStream(),
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        # Requests run in C++ (environ, start_response, body rules); only
        # wsgi.input and the app itself are Python.
        self.native = _gobind.WsgiHandler(
            app=app,
            base=self._base,
            script_name=self._script_name,
            input_type=_Input,
            too_large_type=RequestBodyTooLarge,
            defaults=self.default_headers,
            disconnect_log=_log_disconnect,
            file_wrapper_type=FileWrapper,
            max_body_bytes=max_body_bytes,
        )

    def __call__(self, writer: _gobind.ResponseWriter, request: _gobind.Request) -> None:
        self.native(writer, request)


def _log_disconnect(method: str, target: str, message: str, outcome: str) -> None:
    logger.info("Client %s during %s %s: %s", outcome, method, target, message)


def serve(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    uds: Optional[str] = None,
    fd: Optional[int] = None,
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
        **server_options,
    )
    server.run(host, port, uds=uds, fd=fd)


def make_server(
    app: WSGIApp,
    *,
    threads: int = 1,
    root_path: str = "",
    default_headers: Sequence[Tuple[str, str]] = (),
    max_body_bytes: int = 0,
    multiprocess: bool = False,
    **server_options: Any,
) -> Server:
    """Create a gobind.Server that sends every request to a WSGI app.
    ``multiprocess`` is the environ's ``wsgi.multiprocess``: whether other
    processes serve the same app, as the workers of the gobind command do."""
    server = Server(threads=threads, **server_options)
    handler = WSGIHandler(
        app,
        root_path=root_path,
        default_headers=default_headers,
        max_body_bytes=max_body_bytes,
        multithread=threads > 1,
        multiprocess=multiprocess,
    )
    server.handle_all(handler.native)
    return server

