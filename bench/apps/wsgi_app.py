"""The benchmark routes as a bare WSGI application (PEP 3333)."""

import time

from .payloads import BODY_1MB, BODY_10KB, ECHO_CHUNK, HELLO, SLEEP_SECONDS, SLOW_SECONDS


def _fixed(start_response, content_type, body):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _echo(environ):
    # Yields the request body back as it is read, so the response streams.
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        chunk = stream.read(min(ECHO_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        yield chunk


def app(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ["PATH_INFO"]
    if method == "GET" and path == "/hello":
        return _fixed(start_response, "text/plain", HELLO)
    if method == "GET" and path == "/10k":
        return _fixed(start_response, "application/octet-stream", BODY_10KB)
    if method == "GET" and path == "/1m":
        return _fixed(start_response, "application/octet-stream", BODY_1MB)
    if method == "POST" and path == "/echo":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _echo(environ)
    if method == "GET" and path == "/sleep":
        time.sleep(SLEEP_SECONDS)
        return _fixed(start_response, "text/plain", HELLO)
    if method == "GET" and path == "/slow":
        time.sleep(SLOW_SECONDS)
        return _fixed(start_response, "text/plain", HELLO)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
