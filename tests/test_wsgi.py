"""The WSGI adapter, driven through the gobind command with plain WSGI apps
(tests/apps/wsgi_apps.py), most of them wrapped in wsgiref's validator."""

import hashlib
import http.client
import json
import os
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from cliserver import start
from conftest import upload_in_two_parts


@pytest.fixture(scope="module")
def validated():
    server = start("wsgi_apps:validated", "--no-access-log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw():
    """The same app without the validator, which rejects read() without a size."""
    server = start("wsgi_apps:app", "--no-access-log", "--threads", "4")
    yield server
    server.stop()


def connect(server):
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def get_json(server, target, method="GET", body=None, headers=None):
    connection = connect(server)
    headers = headers or {}
    chunked = headers.get("Transfer-Encoding") == "chunked"
    connection.request(method, target, body=body, headers=headers, encode_chunked=chunked)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    assert response.status == 200, data
    return json.loads(data)


def raw_exchange(server, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def wait_closed(server, path):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path in httpx.get(server.url + "/closed").json():
            return True
        time.sleep(0.05)
    return False


def test_environ_cgi_keys(validated):
    parts = urlsplit(validated.url)
    connection = connect(validated)
    connection.request("GET", "/a%2Fb%20c/../d?x=1&y=%20", headers={"X-Custom": "value"})
    response = connection.getresponse()
    environ = json.loads(response.read())
    client_port = connection.sock.getsockname()[1]
    connection.close()
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/a/b c/../d"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == str(parts.port)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["REMOTE_PORT"] == str(client_port)
    assert "CONTENT_TYPE" not in environ
    assert "CONTENT_LENGTH" not in environ


def test_environ_wsgi_keys(validated):
    environ = get_json(validated, "/")
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True


def test_environ_multithread_with_threads(raw):
    assert get_json(raw, "/")["wsgi.multithread"] is True


def test_environ_headers_exact(validated):
    parts = urlsplit(validated.url)
    environ = get_json(validated, "/", headers={"X-Custom": "value", "User-Agent": "tests"})
    assert environ["headers"] == {
        "HTTP_HOST": f"127.0.0.1:{parts.port}",
        "HTTP_ACCEPT_ENCODING": "identity",
        "HTTP_USER_AGENT": "tests",
        "HTTP_X_CUSTOM": "value",
    }


def test_environ_utf8_path_latin1(validated):
    environ = get_json(validated, "/caf%C3%A9/%E2%82%AC")
    assert environ["PATH_INFO"] == "/café/€".encode("utf-8").decode("latin-1")


def test_environ_path_not_cleaned(validated):
    environ = get_json(validated, "//double//slash/./dot")
    assert environ["PATH_INFO"] == "//double//slash/./dot"


def test_environ_underscore_header_dropped(validated):
    reply = raw_exchange(
        validated,
        b"GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: evil\r\nX-Forwarded-For: good\r\nConnection: close\r\n\r\n",
    )
    environ = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert environ["headers"]["HTTP_X_FORWARDED_FOR"] == "good"


def test_environ_repeated_headers_joined(validated):
    reply = raw_exchange(
        validated,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Multi: a\r\nX-Multi: b\r\nCookie: one=1\r\nCookie: two=2\r\n"
        b"Connection: close\r\n\r\n",
    )
    headers = json.loads(reply.split(b"\r\n\r\n", 1)[1])["headers"]
    assert headers["HTTP_X_MULTI"] == "a, b"
    assert headers["HTTP_COOKIE"] == "one=1; two=2"


def test_environ_content_keys(validated):
    environ = get_json(validated, "/", method="POST", body=b"12345", headers={"Content-Type": "text/plain"})
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in environ["headers"]
    assert "HTTP_CONTENT_LENGTH" not in environ["headers"]
    # Without the key, Werkzeug checks the body against its Content-Length.
    assert "wsgi.input_terminated" not in environ


def test_environ_chunked_no_length(raw):
    environ = get_json(raw, "/", method="POST", body=iter([b"ab", b"cd"]), headers={"Transfer-Encoding": "chunked"})
    assert "CONTENT_LENGTH" not in environ
    assert environ["headers"]["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert environ["wsgi.input_terminated"] is True


BODY = b"ab\ncd\nef"


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("sized", ["ab\n", "cd\n", "ef"]),
        ("lines", ["ab\n", "cd\n", "ef"]),
        ("line-sized", ["ab", "\n"]),
        ("readlines", ["ab\n", "cd\n", "ef"]),
        ("iterate", ["ab\n", "cd\n", "ef"]),
    ],
)
def test_input_modes(validated, mode, expected):
    assert get_json(validated, f"/read?{mode}", method="POST", body=BODY) == expected


@pytest.mark.parametrize("mode", ["all", "lines", "sized"])
def test_input_chunked(raw, mode):
    chunks = iter([b"ab\nc", b"d\ne", b"f"])
    parts = get_json(raw, f"/read?{mode}", method="POST", body=chunks, headers={"Transfer-Encoding": "chunked"})
    assert "".join(parts) == BODY.decode()


def test_input_read_all(raw):
    assert get_json(raw, "/read?all", method="POST", body=BODY) == [BODY.decode()]


def test_input_large_body(raw):
    body = bytes(range(256)) * 4096
    parts = get_json(raw, "/read?all", method="POST", body=body)
    assert parts[0].encode("latin-1") == body


def test_ignored_body_keeps_connection(validated):
    # net/http drains up to 256 KiB of an unread body to reuse the connection.
    connection = connect(validated)
    connection.request("POST", "/", body=b"x" * 200_000)
    first = json.loads(connection.getresponse().read())
    connection.request("GET", "/")
    second = json.loads(connection.getresponse().read())
    connection.close()
    assert second["REMOTE_PORT"] == first["REMOTE_PORT"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_input_read_after_response_began(validated, chunked):
    # The client sends the second half of the body only once the first
    # chunk of the response arrived.
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        urlsplit(validated.url).netloc, "/respond-then-read", body, 100_000, chunked, marker=b"first "
    )
    assert early.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_input_after_streamed_start_expect_continue(raw, chunked):
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        urlsplit(raw.url).netloc, "/stream-then-read", body, 0, chunked, marker=b"100 Continue",
        expect_continue=True,
    )
    assert early.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


def send_half_body(server, path):
    """POST 5,000 bytes of a declared 100,000-byte body, shut the sending
    side, and return all the server sends back."""
    with socket.create_connection(urlsplit(server.url).netloc.rsplit(":", 1), timeout=30) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n" % path.encode())
        sock.sendall(b"x" * 5000)
        sock.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def test_input_ended_early_cuts_stream_short(raw):
    # The app streamed its start, then its read failed: the response must
    # not end as if it were complete.
    response = send_half_body(raw, "/stream-then-read")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"start\n" in response
    assert not response.endswith(b"0\r\n\r\n")


def test_input_ended_early_is_400(raw):
    response = send_half_body(raw, "/read?all")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_chunked_input_ended_early_is_400(raw):
    # Cut inside a chunk, within the 64 KiB read ahead of the app.
    with socket.create_connection(urlsplit(raw.url).netloc.rsplit(":", 1), timeout=30) as sock:
        sock.sendall(b"POST /read?all HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello")
        sock.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_app_connection_error_is_500(raw):
    # The app's own ConnectionError is an app failure, not a client that left.
    assert httpx.get(raw.url + "/backend-refused", timeout=10).status_code == 500
    assert raw.wait_output("ConnectionRefusedError: backend refused the connection")
    assert "Client went away during GET /backend-refused" not in raw.output


@pytest.fixture(scope="module")
def streaming():
    """The validated app with room for /release while /stream runs."""
    server = start("wsgi_apps:validated", "--no-access-log", "--threads", "4")
    yield server
    server.stop()


def test_stream_chunks_sent_when_produced(streaming):
    with httpx.Client(timeout=8) as client:
        with client.stream("GET", streaming.url + "/stream") as response:
            lines = response.iter_lines()
            first = next(lines)
            httpx.get(streaming.url + "/release")
            second = next(lines)
    assert (first, second) == ("first", "second")
    assert response.headers.get("content-length") is None


def test_stream_closed(streaming):
    with httpx.stream("GET", streaming.url + "/stream", timeout=8) as response:
        lines = response.iter_lines()
        next(lines)
        httpx.get(streaming.url + "/release")
        list(lines)
    assert wait_closed(streaming, "/stream")


def test_close_on_client_disconnect(raw):
    path = "/stream"
    parts = urlsplit(raw.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(b"GET /stream?gone HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"first" in sock.recv(65536)
    sock.close()
    httpx.get(raw.url + "/release")
    assert wait_closed(raw, path)


def test_write_callable(validated):
    assert httpx.get(validated.url + "/write").text == "written returned"


def test_body_cut_at_content_length(validated):
    connection = connect(validated)
    connection.request("GET", "/too-long")
    body = connection.getresponse().read()
    connection.request("GET", "/write")
    after = connection.getresponse().read()
    connection.close()
    assert body == b"abcde"
    assert after == b"written returned"


def test_body_cut_still_closes(validated):
    httpx.get(validated.url + "/too-long")
    assert wait_closed(validated, "/too-long")


def test_conflicting_content_lengths_is_500(raw):
    reply = raw_exchange(raw, b"GET /two-lengths HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert raw.wait_output('ValueError: conflicting Content-Length values "1" and "2": a response has one length')


def test_signed_content_length_is_500(raw):
    reply = raw_exchange(raw, b"GET /signed-length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert raw.wait_output('ValueError: invalid Content-Length "+2": it must be a number of bytes, digits only')


def test_head_no_body(validated):
    reply = raw_exchange(validated, b"HEAD /write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b""


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body(validated, code):
    reply = raw_exchange(validated, f"GET /status?{code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {code} ".encode())
    assert body == b""


@pytest.mark.parametrize("code", [100, 101, 103])
def test_informational_status_is_500(raw, code):
    reply = raw_exchange(raw, f"GET /status?{code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert reply.count(b"HTTP/1.1 ") == 1
    assert raw.wait_output(f"ValueError: invalid status '{code} Status': a WSGI response needs a final status, 200 or more")


def test_status_reason_from_go(validated):
    response = httpx.get(validated.url + "/status?418")
    assert (response.status_code, response.reason_phrase) == (418, "I'm a teapot")


def test_error_before_start_is_500(validated):
    response = httpx.get(validated.url + "/error-before-start")
    assert (response.status_code, response.text) == (500, "Internal Server Error\n")
    assert validated.wait_output("RuntimeError: failed before start_response")


def test_exc_info_replaces_response(validated):
    response = httpx.get(validated.url + "/error-exc-info")
    assert (response.status_code, response.text) == (503, "replaced response")


def test_error_after_body_closes_connection(validated):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(validated.url + "/error-after-body")
    assert wait_closed(validated, "/error-after-body")


def test_exc_info_after_body_reraises(raw):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(raw.url + "/exc-info-after-body")
    assert raw.wait_output("ValueError: failed after the headers were sent")


def test_second_start_response_rejected(raw):
    response = httpx.get(raw.url + "/second-start")
    assert response.text == "start_response() called a second time without exc_info"


def test_empty_chunks_send_headers(validated):
    response = httpx.get(validated.url + "/empty")
    assert (response.headers["x-empty"], response.headers["content-length"], response.content) == ("yes", "0", b"")


@pytest.mark.parametrize("size", [0, 1, 100_000, 3_000_001])
def test_file_wrapper(validated, size):
    response = httpx.get(validated.url + f"/file?{size}")
    expected = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert response.content == expected


@pytest.mark.parametrize("variant, start, end", [("bytesio", 0, 102400), ("offset", 1000, 102400), ("head", 0, 5000)])
def test_file_wrapper_variants(validated, variant, start, end):
    response = httpx.get(validated.url + f"/file-variant?{variant}")
    assert response.content == (bytes(range(256)) * 400)[start:end]


def test_file_wrapper_after_write(raw):
    # Not through the validator, whose wrapper of the result hides the
    # file_wrapper from the engine.
    response = httpx.get(raw.url + "/file-variant?after-write")
    assert response.content == b"prefix" + (bytes(range(256)) * 400)[:5000]


def test_body_short_of_content_length_logged(raw):
    # The bytes of a file count toward the declared Content-Length: a
    # complete file response logs nothing, before the short one's line.
    httpx.get(raw.url + "/file-variant?after-write")
    reply = raw_exchange(raw, b"GET /too-short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.endswith(b"\r\n\r\nabc")
    assert raw.wait_output("response to GET /too-short ended 2 bytes short of its Content-Length; the connection is closed")
    assert "GET /file-variant ended" not in raw.output


def test_file_wrapper_keeps_connection(validated):
    connection = connect(validated)
    connection.request("GET", "/file-variant?head")
    first = connection.getresponse().read()
    connection.request("GET", "/write")
    second = connection.getresponse().read()
    connection.close()
    assert (len(first), second) == (5000, b"written returned")


def test_errors_stream_logged(validated):
    httpx.get(validated.url + "/errors")
    assert validated.wait_output("ERROR gobind.wsgi.errors: message from the app")


@pytest.fixture(scope="module")
def mounted():
    server = start("wsgi_apps:validated", "--no-access-log", "--root-path", "/api")
    yield server
    server.stop()


@pytest.mark.parametrize(
    "target, script_name, path_info",
    [("/api/x", "/api", "/x"), ("/api", "/api", ""), ("/apix", "/api", "/apix"), ("/other", "/api", "/other")],
)
def test_root_path(mounted, target, script_name, path_info):
    environ = get_json(mounted, target)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


@pytest.fixture(scope="module")
def limited():
    server = start("wsgi_apps:app", "--no-access-log", "--limit-request-body-bytes", "10",
                   "--header", "X-Served-By: gobind", "--header", "Content-Type: application/x-default")
    yield server
    server.stop()


def test_body_limit_by_length(limited):
    response = httpx.post(limited.url + "/read?all", content=b"x" * 11)
    assert (response.status_code, response.text) == (413, "request body exceeds the limit of 10 bytes\n")


def test_body_limit_chunked(limited):
    response = httpx.post(limited.url + "/read?all", content=iter([b"x" * 6, b"y" * 6]))
    assert response.status_code == 413


def test_body_limit_allows_smaller(limited):
    assert httpx.post(limited.url + "/read?all", content=b"x" * 10).json() == ["x" * 10]


def test_default_header_added(limited):
    assert httpx.get(limited.url + "/write").headers["x-served-by"] == "gobind"


def test_default_header_app_wins(limited):
    assert httpx.get(limited.url + "/write").headers["content-type"] == "text/plain"
