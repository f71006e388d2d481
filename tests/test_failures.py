"""Handler exceptions and the Python exceptions of invalid use."""

from __future__ import annotations

import errno
import re
import socket
import time

import httpx
import pytest

import gobind
from conftest import AppProcess
from gobind.asgi import AsgiServer


def noop(w, req):
    pass


# Handler exceptions.


def test_raise_gives_500(handlers_app: AppProcess):
    response = httpx.get(f"{handlers_app.url}/raise", timeout=30)
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert "X-Lost" not in response.headers


def test_raise_logs_traceback(handlers_app: AppProcess):
    httpx.get(f"{handlers_app.url}/raise", timeout=30)
    stderr = handlers_app.stderr
    assert "ERROR gobind: Exception in handler for GET /raise\nTraceback (most recent call last):\n" in stderr
    assert 'in raise_error\n    raise ValueError("handler failed on purpose")\n' in stderr
    assert "\nValueError: handler failed on purpose\n" in stderr


def test_raise_keeps_serving(handlers_app: AppProcess):
    with httpx.Client(base_url=handlers_app.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/raise").status_code == 500
        response = client.get("/items/1")
    assert response.status_code == 200
    assert response.json()["path_params"] == {"id": "1"}


def test_raise_after_stream_truncates(handlers_app: AppProcess):
    host, _, port = handlers_app.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /raise-after-stream HTTP/1.1\r\nHost: h\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: 1000\r\n" in head + b"\r\n"
    assert body == b"partial"


def test_raise_after_stream_httpx_error(handlers_app: AppProcess):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{handlers_app.url}/raise-after-stream", timeout=30)


def test_raise_after_stream_logged(handlers_app: AppProcess):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{handlers_app.url}/raise-after-stream", timeout=30)
    stderr = handlers_app.stderr
    assert "ERROR gobind: Exception in handler for GET /raise-after-stream\nTraceback (most recent call last):\n" in stderr
    assert "\nRuntimeError: failed after streaming\n" in stderr


# Invalid patterns. Go's ServeMux reports where each conflicting pattern
# was registered, a line of gobind's engine: the message leaves it out.


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "invalid pattern: empty"),
        (
            "GET /a/{",
            "invalid pattern \"GET /a/{\": parsing \"GET /a/{\": at offset 7: bad wildcard segment (must end with '}')",
        ),
        ("/{a}/{a}", 'invalid pattern "/{a}/{a}": parsing "/{a}/{a}": at offset 5: duplicate wildcard name "a"'),
        (
            "GET /r/{x...}/more",
            'invalid pattern "GET /r/{x...}/more": parsing "GET /r/{x...}/more": at offset 7: {...} wildcard not at end',
        ),
        ("GET /a\r\nX: y", 'invalid pattern "GET /a\\r\\nX: y": control character 0x0d at byte 6'),
        ("/\x00", 'invalid pattern "/\\x00": control character 0x00 at byte 1'),
        (
            "FOO BAR /a",
            'invalid pattern "FOO BAR /a": blank in the host "BAR "; the form is "[METHOD ][HOST]/[PATH]"',
        ),
    ],
)
def test_pattern_invalid(pattern, message):
    server = gobind.Server()
    with pytest.raises(ValueError) as caught:
        server.handle(pattern, noop)
    assert str(caught.value) == message


def test_pattern_duplicate():
    server = gobind.Server()
    server.handle("GET /dup", noop)
    with pytest.raises(ValueError) as caught:
        server.route("GET /dup")(noop)
    expected = (
        r'invalid pattern "GET /dup": pattern "GET /dup" conflicts with pattern "GET /dup":\n'
        r"GET /dup matches the same requests as GET /dup"
    )
    assert re.fullmatch(expected, str(caught.value))


def test_pattern_conflicting():
    server = gobind.Server()
    server.handle("/y/{a}/z", noop)
    with pytest.raises(ValueError) as caught:
        server.handle("/y/q/{b}", noop)
    expected = (
        r'invalid pattern "/y/q/\{b\}": pattern "/y/q/\{b\}" conflicts with pattern "/y/\{a\}/z":\n'
        r'/y/q/\{b\} and /y/\{a\}/z both match some paths, like "/y/q/z".\n'
        r"But neither is more specific than the other.\n"
        r'/y/q/\{b\} matches "/y/q/b", but /y/\{a\}/z doesn\'t.\n'
        r'/y/\{a\}/z matches "/y/a/z", but /y/q/\{b\} doesn\'t.'
    )
    assert re.fullmatch(expected, str(caught.value))


def test_handler_not_callable():
    with pytest.raises(TypeError) as caught:
        gobind.Server().handle("/z", 5)
    assert str(caught.value) == "handler for '/z' is not callable: 5"


# Invalid settings and addresses.


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"threads": 0}, ValueError, "invalid threads 0: must be 1 or more"),
        ({"threads": "4"}, TypeError, "invalid threads '4': must be an integer"),
        ({"threads": True}, TypeError, "invalid threads True: must be an integer"),
        ({"max_header_bytes": 2**62 + 1}, ValueError, f"invalid max_header_bytes {2**62 + 1}: must be at most 2**62"),
        ({"max_header_fields": 1.5}, TypeError, "invalid max_header_fields 1.5: must be an integer"),
        ({"read_timeout": -1}, ValueError, "invalid read_timeout -1: must be 0 or more seconds"),
        ({"idle_timeout": float("nan")}, ValueError, "invalid idle_timeout nan: must be 0 or more seconds"),
        ({"write_timeout": "5"}, TypeError, "invalid write_timeout '5': must be a number of seconds"),
        ({"shutdown_timeout": -0.5}, ValueError, "invalid shutdown_timeout -0.5: must be 0 or more seconds"),
    ],
)
def test_invalid_settings(settings, error, message):
    with pytest.raises(error) as caught:
        gobind.Server(**settings)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"max_concurrency": -1}, ValueError, "invalid max_concurrency -1: must be 0 or more"),
        ({"shutdown_timeout": None}, TypeError, "invalid shutdown_timeout None: must be a number of seconds"),
    ],
)
def test_invalid_asgi_settings(settings, error, message):
    with pytest.raises(error) as caught:
        AsgiServer(lambda scope, receive, send: None, **settings)
    assert str(caught.value) == message


def test_huge_timeouts_accepted():
    # Longer than Go's durations reach: cut to a bound, not an overflow.
    gobind.Server(read_timeout=float("inf"), idle_timeout=10**30)


@pytest.mark.parametrize("port", [70000, -1, "80"])
def test_start_invalid_port(port):
    with pytest.raises(ValueError) as caught:
        gobind.Server().start("127.0.0.1", port)
    assert str(caught.value) == f"invalid port {port!r}: must be an integer from 0 to 65535"


def test_start_port_in_use():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(OSError) as caught:
            gobind.Server().start("127.0.0.1", port)
    assert caught.value.errno == errno.EADDRINUSE
    assert caught.value.strerror == f"listen tcp 127.0.0.1:{port}: bind: address already in use"


def test_start_address_not_local():
    # 192.0.2.0/24 is reserved for documentation, so no interface has it.
    with pytest.raises(OSError) as caught:
        gobind.Server().start("192.0.2.1", 0)
    assert caught.value.errno == errno.EADDRNOTAVAIL
    assert caught.value.strerror == "listen tcp 192.0.2.1:0: bind: cannot assign requested address"


def test_start_uds_missing_directory(tmp_path):
    path = tmp_path / "missing" / "sock"
    with pytest.raises(FileNotFoundError) as caught:
        gobind.Server().start(uds=str(path))
    assert caught.value.errno == errno.ENOENT
    assert caught.value.strerror == f"listen unix {path}: bind: no such file or directory"


def test_start_uds_empty_path():
    with pytest.raises(ValueError) as caught:
        gobind.Server().start(uds="")
    assert str(caught.value) == 'invalid address "unix:": missing socket path'


def test_start_twice():
    server = gobind.Server()
    server.start("127.0.0.1", 0)
    try:
        with pytest.raises(RuntimeError) as caught:
            server.start("127.0.0.1", 0)
        assert str(caught.value) == "server is already started"
    finally:
        server.shutdown(5)


def test_wait_not_started():
    with pytest.raises(RuntimeError) as caught:
        gobind.Server().wait(0)
    assert str(caught.value) == "server is not started"


# Header names and values.


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("X-Bad", "a\r\nb", 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0d\\x0ab")'),
        ("X-Bad", "a\nb", 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0ab")'),
        ("X-Bad", "a\rb", 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0db")'),
        ("X-Bad", b"a\r\nb", 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0d\\x0ab")'),
        (
            "X\r\nY",
            "v",
            "invalid header name \"X\\x0d\\x0aY\": only letters, digits and !#$%&'*+-.^_`|~ are allowed",
        ),
        (b"X\nY", "v", "invalid header name \"X\\x0aY\": only letters, digits and !#$%&'*+-.^_`|~ are allowed"),
        ("", "v", "invalid header name: empty"),
        ("X", "\u20ac", "header value '\u20ac' is not latin-1 text; pass bytes instead, for example value.encode()"),
    ],
)
def test_headers_invalid(name, value, message):
    headers = gobind.Headers()
    with pytest.raises(ValueError) as caught:
        headers[name] = value
    assert str(caught.value) == message


@pytest.mark.parametrize("method", ["add", "set"])
def test_headers_invalid_add_set(method):
    headers = gobind.Headers()
    with pytest.raises(ValueError) as caught:
        getattr(headers, method)("X-Bad", "a\r\nb")
    assert str(caught.value) == 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0d\\x0ab")'


def test_headers_invalid_constructor():
    with pytest.raises(ValueError) as caught:
        gobind.Headers([("X-Bad", "a\nb")])
    assert str(caught.value) == 'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0ab")'


def test_headers_value_type():
    with pytest.raises(TypeError) as caught:
        gobind.Headers()["X"] = 1
    assert str(caught.value) == "header value must be str or bytes, not int"


def test_headers_case_insensitive():
    headers = gobind.Headers([("Content-Type", "a"), ("X-Multi", "1"), ("x-multi", "2")])
    assert headers["content-TYPE"] == "a"
    assert headers.get_all("X-MULTI") == ["1", "2"]
    assert headers.keys() == ["Content-Type", "X-Multi"]
    assert len(headers) == 3
    headers["X-MULTI"] = "3"
    assert headers.items() == [("Content-Type", "a"), ("X-MULTI", "3")]
    del headers["content-type"]
    assert "Content-Type" not in headers


def test_headers_bytes_round_trip():
    headers = gobind.Headers()
    headers[b"X-Raw"] = b"\xff\xfe"
    assert headers["x-raw"] == "\xff\xfe"
    assert headers.raw() == [(b"X-Raw", b"\xff\xfe")]


# Protections of the engine.


def exchange(app: AppProcess, request: bytes) -> bytes:
    host, _, port = app.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_read_timeout_in_handler(launch):
    app = launch("handlers.py", "--read-timeout", "0.3")
    response = exchange(app, b"POST /digest HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    # A client that stalls is routine: one line, no traceback.
    app.wait_for_output(r"INFO gobind: Client timed out during POST /digest: \[Errno 110\] reading request body timed out: read tcp ")
    assert "Traceback" not in app.stderr


def test_header_too_large(launch):
    app = launch("handlers.py", "--max-header-bytes", "1024")
    response = exchange(app, b"GET /items/1 HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nConnection: close\r\n" in response


def test_malformed_header_400(handlers_app: AppProcess):
    response = exchange(handlers_app, b"GET /items/1 HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in response


def test_signed_content_length_is_500(handlers_app: AppProcess):
    assert httpx.get(f"{handlers_app.url}/bad-content-length", timeout=30).status_code == 500
    handlers_app.wait_for_output(re.escape('ValueError: invalid Content-Length "+4": it must be a number of bytes, digits only'))


@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"max_body_bytes": -1}, ValueError, "invalid max_body_bytes -1: must be 0 or more"),
        ({"max_body_bytes": "5"}, TypeError, "invalid max_body_bytes '5': must be an integer"),
        ({"root_path": None}, TypeError, "invalid root path None: must be a str"),
        ({"default_headers": "x"}, TypeError, "invalid default header 'x': must be a (name, value) pair"),
        ({"default_headers": [(1, 2)]}, TypeError, "invalid default header (1, 2): name and value must be str"),
        ({"default_headers": [("X-A", "1\r\nX-B: 2")]}, ValueError, "invalid default header value '1\\r\\nX-B: 2': contains CR, LF or NUL"),
        ({"default_headers": [("X A", "1")]}, ValueError, "invalid default header name 'X A'"),
        ({"default_headers": [("X(A", "1")]}, ValueError, "invalid default header name 'X(A'"),
    ],
)
def test_invalid_wsgi_settings(settings, error, message):
    from gobind.wsgi import make_server

    with pytest.raises(error) as caught:
        make_server(lambda environ, start_response: [], **settings)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda s: s.shutdown("1"), TypeError, "invalid timeout '1': must be a number of seconds"),
        (lambda s: s.wait("1"), TypeError, "invalid timeout '1': must be a number of seconds"),
        (lambda s: s.start("127.0.0.1", True), ValueError, "invalid port True: must be an integer from 0 to 65535"),
    ],
)
def test_invalid_call_arguments(call, error, message):
    server = gobind.Server()
    with pytest.raises(error) as caught:
        call(server)
    assert str(caught.value) == message


def test_http2_cleartext_not_bool():
    with pytest.raises(TypeError) as caught:
        gobind.Server(http2_cleartext="yes")
    assert str(caught.value) == "invalid http2_cleartext 'yes': must be True or False"


def test_asgi_serve_threads_not_int():
    from gobind.asgi import serve

    with pytest.raises(ValueError) as caught:
        serve(lambda scope, receive, send: None, threads=True)
    assert str(caught.value) == "invalid threads True for an ASGI app: it runs on one event loop thread"


def test_tiny_timeout_is_not_the_default():
    # 0.0004 s rounds to 0 ms, which would mean the 10 s default.
    server = gobind.Server(read_header_timeout=0.0004)
    address = server.start("127.0.0.1", 0)
    try:
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=8) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")
            started = time.monotonic()
            assert sock.recv(65536) == b""  # closed by the header timeout
            assert time.monotonic() - started < 5
    finally:
        server.shutdown(1)
