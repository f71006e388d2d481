"""Plain WSGI apps for the adapter tests. ``validated`` wraps ``app`` in
wsgiref.validate.validator, which asserts PEP 3333 rules on both sides."""

import hashlib
import io
import json
import os
import sys
import tempfile
import threading
from wsgiref.validate import validator

# Responses whose close() ran, by path; read back through /closed.
closed = []
closed_lock = threading.Lock()
# Set by /release; /stream's generator waits for it before its second chunk.
release = threading.Event()

ENVIRON_KEYS = (
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme",
    "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated",
)


class Tracked:
    """A response body that records its close()."""

    def __init__(self, path, chunks):
        self.path = path
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        with closed_lock:
            closed.append(self.path)


def text(start_response, body, status="200 OK", headers=()):
    data = body.encode("utf-8") if isinstance(body, str) else body
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))] + list(headers))
    return [data]


def show_environ(environ, start_response):
    shown = {key: environ[key] for key in ENVIRON_KEYS if key in environ}
    shown["wsgi.version"] = list(environ["wsgi.version"])
    shown["headers"] = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    return text(start_response, json.dumps(shown))


def read_body(environ, start_response):
    stream = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "all":
        parts = [stream.read()]
    elif mode == "sized":
        parts = []
        while True:
            part = stream.read(3)
            if not part:
                break
            parts.append(part)
    elif mode == "lines":
        parts = []
        while True:
            line = stream.readline()
            if not line:
                break
            parts.append(line)
    elif mode == "line-sized":
        parts = [stream.readline(2), stream.readline(100)]
    elif mode == "readlines":
        parts = stream.readlines()
    elif mode == "iterate":
        parts = list(stream)
    else:
        parts = []
    return text(start_response, json.dumps([part.decode("latin-1") for part in parts]))


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b"first\n"
        # The client reads the first chunk before it sets the event, so the
        # first chunk must have left without waiting for the rest.
        if not release.wait(10):
            yield b"timeout\n"
            return
        release.clear()
        yield b"second\n"

    return Tracked(environ["PATH_INFO"], chunks())


def respond_then_read(environ, start_response):
    # Streams the start of the response, then reads the rest of the body.
    start_response("200 OK", [("Content-Type", "text/plain")])
    stream = environ["wsgi.input"]
    first = stream.read(5)

    def chunks():
        yield b"first " + first + b"\n"
        digest = hashlib.sha256(first)
        size = len(first)
        while chunk := stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        yield f"size {size} sha256 {digest.hexdigest()}\n".encode()

    return chunks()


def stream_then_read(environ, start_response):
    # Streams the start of the response before it reads any of the body.
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b"start\n"
        body = environ["wsgi.input"].read()
        yield f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode()

    return chunks()


def backend_refused(environ, start_response):
    raise ConnectionRefusedError("backend refused the connection")


def release_stream(environ, start_response):
    release.set()
    return text(start_response, "released")


def write_callable(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


def too_long(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return Tracked(environ["PATH_INFO"], [b"abc", b"defgh", b"ij"])


def too_short(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"abc"]


def two_lengths(environ, start_response):
    start_response("200 OK", [("Content-Length", "1"), ("Content-Length", "2")])
    return [b"xy"]


def signed_length(environ, start_response):
    start_response("200 OK", [("Content-Length", "+2")])
    return [b"xy"]


def status(environ, start_response):
    code = environ["QUERY_STRING"]
    headers = [("Content-Type", "text/plain")] if code not in ("204", "304") else []
    start_response(f"{code} Status", headers)
    return [b"body that must not be sent"]


def error_before_start(environ, start_response):
    raise RuntimeError("failed before start_response")


def error_with_exc_info(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("replaced")
    except ValueError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced response"]


def error_after_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b"partial"
        raise RuntimeError("failed after the first chunk")

    return Tracked(environ["PATH_INFO"], chunks())


def exc_info_after_body(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        yield b"partial"
        try:
            raise ValueError("failed after the headers were sent")
        except ValueError:
            # PEP 3333: start_response re-raises once the headers are out.
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"never sent"

    return Tracked(environ["PATH_INFO"], chunks())


def second_start(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        start_response("200 OK", [("Content-Type", "text/plain")])
    except AssertionError as error:
        return [str(error).encode()]
    return [b"second call accepted"]


def empty(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Empty", "yes")])
    return Tracked(environ["PATH_INFO"], [b"", b""])


def file_wrapper(environ, start_response):
    size = int(environ["QUERY_STRING"] or "100000")
    handle = tempfile.TemporaryFile()
    handle.write(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    handle.seek(0)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](handle, 8192)


def file_wrapper_variants(environ, start_response):
    """/file-variant?bytesio: a file object without a descriptor;
    ?offset: a file read from position 1000; ?head: a file cut by Content-Length;
    ?after-write: 6 bytes given to write() first, then 5000 of the file."""
    variant = environ["QUERY_STRING"]
    data = bytes(range(256)) * 400
    length = len(data)
    prefix = b""
    if variant == "bytesio":
        handle = io.BytesIO(data)
    else:
        handle = tempfile.TemporaryFile()
        handle.write(data)
        handle.seek(0)
        if variant == "offset":
            handle.read(1000)
            length -= 1000
        elif variant == "head":
            length = 5000
        elif variant == "after-write":
            prefix = b"prefix"
            length = 5000
    write = start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(prefix) + length))]
    )
    if prefix:
        write(prefix)
    return environ["wsgi.file_wrapper"](handle)


def errors_stream(environ, start_response):
    environ["wsgi.errors"].write("message from the app\n")
    environ["wsgi.errors"].flush()
    return text(start_response, "logged")


def show_closed(environ, start_response):
    with closed_lock:
        return text(start_response, json.dumps(closed))


def pid(environ, start_response):
    return text(start_response, str(os.getpid()))


ROUTES = {
    "/environ": show_environ,
    "/read": read_body,
    "/stream": stream,
    "/release": release_stream,
    "/respond-then-read": respond_then_read,
    "/stream-then-read": stream_then_read,
    "/backend-refused": backend_refused,
    "/write": write_callable,
    "/too-long": too_long,
    "/two-lengths": two_lengths,
    "/too-short": too_short,
    "/signed-length": signed_length,
    "/status": status,
    "/error-before-start": error_before_start,
    "/error-exc-info": error_with_exc_info,
    "/error-after-body": error_after_body,
    "/second-start": second_start,
    "/exc-info-after-body": exc_info_after_body,
    "/empty": empty,
    "/file": file_wrapper,
    "/file-variant": file_wrapper_variants,
    "/errors": errors_stream,
    "/closed": show_closed,
    "/pid": pid,
}


def app(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"], show_environ)
    return route(environ, start_response)


validated = validator(app)
