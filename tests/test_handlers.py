"""Routing, request attributes, headers and bodies through a real server."""

from __future__ import annotations

import hashlib
import json
import os
import socket

import httpx
import pytest

from conftest import AppProcess, BackgroundGet, half_closed_exchange, upload_in_two_parts

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def client(shared_app: AppProcess):
    with httpx.Client(base_url=shared_app.url, timeout=60) as client:
        yield client


def raw_request(app: AppProcess, request: bytes) -> tuple[bytes, tuple[str, int]]:
    """Send request bytes on a new connection and return everything the
    server sends until it closes, and the client's own address."""
    host, _, port = app.address.rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=30) as sock:
        client_address = sock.getsockname()[:2]
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), client_address


def split_response(response: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return status_line, fields, body


# Routing.


def test_route_get_path_param(client):
    data = client.get("/items/42").json()
    assert data["handler"] == "get_item"
    assert data["path_params"] == {"id": "42"}


def test_route_post_same_path(client):
    data = client.post("/items/42", content=b"payload").json()
    assert data["handler"] == "post_item"
    assert data["body"] == "payload"
    assert data["path_params"] == {"id": "42"}


def test_route_head_uses_get(client):
    response = client.head("/items/7")
    assert response.status_code == 200
    assert response.content == b""


def test_route_wrong_method_405(client):
    response = client.delete("/items/42")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert response.text == "Method Not Allowed\n"


def test_route_unknown_path_404(client):
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response.text == "404 page not found\n"


@pytest.mark.parametrize(
    ("path", "rest"),
    [("/files/a/b/c.txt", "a/b/c.txt"), ("/files/", ""), ("/files/x%20y", "x y")],
)
def test_route_rest_wildcard(client, path, rest):
    data = client.get(path).json()
    assert data["handler"] == "files"
    assert data["path_params"] == {"rest": rest}


def test_route_escaped_slash_param(client):
    data = client.get("/items/a%2Fb").json()
    assert data["path_params"] == {"id": "a/b"}
    assert data["path"] == "/items/a/b"
    assert data["raw_path"] == "/items/a%2Fb"


def test_route_utf8_param(client):
    data = client.get("/items/caf%C3%A9").json()
    assert data["path_params"] == {"id": "caf\u00e9"}
    assert data["path"] == "/items/caf\u00e9"


def test_route_non_utf8_param(client):
    # Undecodable bytes arrive as surrogates, as os.fsdecode gives them.
    data = client.get("/items/caf%E9").json()
    assert data["path_params"] == {"id": "caf\udce9"}
    assert data["path"] == "/items/caf\udce9"


def test_route_end_anchor(client):
    assert client.get("/exact/").text == "exact"
    assert client.get("/exact/more").status_code == 404


def test_route_host_pattern(client):
    assert client.get("/where", headers={"Host": "example.test"}).text == "host example.test"


def test_route_other_host(client):
    assert client.get("/where", headers={"Host": "other.test"}).text == "any host"


def test_request_attributes(shared_app):
    request = b"GET /attributes?a=1&b=%20 HTTP/1.1\r\nHost: app.test:81\r\nConnection: close\r\n\r\n"
    response, (client_host, client_port) = raw_request(shared_app, request)
    status_line, _, body = split_response(response)
    assert status_line == b"HTTP/1.1 200 OK"
    assert json.loads(body) == {
        "method": "GET",
        "url": "/attributes?a=1&b=%20",
        "path": "/attributes",
        "raw_path": "/attributes",
        "query": "a=1&b=%20",
        "protocol": "HTTP/1.1",
        "scheme": "http",
        "host": "app.test:81",
        "remote_addr": f"{client_host}:{client_port}",
        "local_addr": shared_app.address,
        "client": [client_host, client_port],
        "content_length": 0,
        "path_params": {},
    }


def test_request_http10_protocol(shared_app):
    response, _ = raw_request(shared_app, b"GET /attributes HTTP/1.0\r\n\r\n")
    status_line, _, body = split_response(response)
    assert status_line == b"HTTP/1.0 200 OK"
    assert json.loads(body)["protocol"] == "HTTP/1.0"


def test_request_content_length(client):
    data = client.post("/items/1", content=b"12345").json()
    assert data["content_length"] == 5


def test_request_chunked_content_length_none(client):
    data = client.post("/items/1", content=iter([b"ab", b"cd"])).json()
    assert data["content_length"] is None
    assert data["body"] == "abcd"


# Headers.


def test_headers_multi_valued_request(shared_app):
    request = (
        b"GET /headers HTTP/1.1\r\nHost: h\r\nX-Multi: 1\r\nx-multi: 2\r\nX-MULTI: 3\r\nConnection: close\r\n\r\n"
    )
    data = json.loads(split_response(raw_request(shared_app, request)[0])[2])
    assert data["x_multi"] == ["1", "2", "3"]
    assert data["x_multi_first"] == "1"
    assert data["has_x_multi"] is True
    assert data["missing"] == "default"


def test_headers_latin1_request_value(shared_app):
    request = b"GET /headers HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\nConnection: close\r\n\r\n"
    data = json.loads(split_response(raw_request(shared_app, request)[0])[2])
    items = dict(data["items"])
    raw = dict(data["raw"])
    assert items["X-Latin"] == "caf\u00e9"
    assert items["X-Utf8"] == "caf\u00c3\u00a9"
    assert raw[b"X-Latin".hex()] == b"caf\xe9".hex()
    assert raw[b"X-Utf8".hex()] == b"caf\xc3\xa9".hex()


def test_headers_host_included(shared_app):
    request = b"GET /headers HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n"
    data = json.loads(split_response(raw_request(shared_app, request)[0])[2])
    assert ["Host", "h.test"] in data["items"]


def test_headers_multi_valued_response(client):
    response = client.get("/response-headers")
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.headers.get_list("x-replaced") == ["new"]


def test_headers_non_ascii_response(client):
    raw = dict(client.get("/response-headers").headers.raw)
    assert raw[b"X-Latin"] == b"caf\xe9"
    assert raw[b"X-Bytes"] == b"\xff\x01\x80"


def test_headers_invalid_in_handler(client):
    assert client.get("/invalid-header").json() == [
        'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0d\\x0aInjected: 1")',
        'invalid value for header "X-Bad": CR, LF and NUL are not allowed (value "a\\x0ab")',
        "invalid header name \"Bad\\x0d\\x0aName\": only letters, digits and !#$%&'*+-.^_`|~ are allowed",
        'invalid value for header "X-Nul": CR, LF and NUL are not allowed (value "a\\x00b")',
    ]


# Bodies.


def test_body_binary_round_trip(client):
    body = bytes(range(256)) * 64 + b"\x00\x00end"
    response = client.post("/echo", content=body)
    assert response.content == body
    assert response.headers["X-Body-Again"] == "True"


def test_body_empty(client):
    response = client.post("/echo", content=b"")
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_body_chunked_request(client):
    pieces = [b"\x00" * 10, b"abc", bytes(range(256)) * 300]
    response = client.post("/echo", content=iter(pieces))
    assert response.content == b"".join(pieces)


def test_body_read_sizes(client):
    assert client.post("/read", content=b"abcdefghijklmnop").json() == ["abc", "defgh", "ijklmnop", ""]


def test_body_read_sizes_chunked(client):
    pieces = [b"ab", b"cdefg", b"hijklmnop"]
    assert client.post("/read", content=iter(pieces)).json() == ["abc", "defgh", "ijklmnop", ""]


def test_body_read_then_body(client):
    assert client.post("/read-then-body", content=b"abcdef").json() == ["ab", "cdef", ""]


def test_body_read_then_body_chunked(client):
    assert client.post("/read-then-body", content=iter([b"abc", b"def"])).json() == ["ab", "cdef", ""]


def test_writer_write_types(client):
    assert client.get("/write-types").content == "bytes,bytearray,memoryview,str caf\u00e9".encode()


def test_body_iteration(client):
    body = bytes(range(256)) * 1024  # 256 KiB
    data = client.post("/digest", content=body).json()
    assert data["size"] == len(body)
    assert data["sha256"] == hashlib.sha256(body).hexdigest()
    assert data["largest"] <= 64 * 1024


def test_body_iteration_chunked(client):
    pieces = [b"x" * 1000, b"", b"\x00" * 70000, b"end"]
    data = client.post("/digest", content=iter(pieces)).json()
    assert data["size"] == 71003
    assert data["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_read_after_response_began(shared_app, chunked):
    # The handler flushes the start of its response, then reads the rest of
    # the body, which the client sends only once that start arrived.
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        shared_app.address, "/respond-then-read", body, 100_000, chunked, marker=b"first "
    )
    assert early.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_streamed_response_then_body_expect_continue(shared_app, chunked):
    # The client waits for 100 Continue, which must come before the header
    # of a streamed response that reads the body afterwards.
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        shared_app.address, "/stream-then-read", body, 0, chunked, marker=b"100 Continue", expect_continue=True
    )
    assert early.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert response[len(b"HTTP/1.1 100 Continue\r\n\r\n"):].startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


def test_streamed_4xx_sends_no_continue(shared_app):
    head = b"POST /stream-413 HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n"
    response, _ = raw_request(shared_app, head)
    assert response.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert b"100 Continue" not in response


def test_handler_continue_sent_once(shared_app):
    early, response = upload_in_two_parts(
        shared_app.address, "/continue-then-stream", b"x" * 1000, 0, False, marker=b"100 Continue",
        expect_continue=True,
    )
    assert response.count(b"HTTP/1.1 100 Continue\r\n") == 1
    assert b"size 1000\n" in response


def test_continue_after_body_read_sent_once(shared_app):
    early, response = upload_in_two_parts(
        shared_app.address, "/read-then-continue", b"x" * 1000, 0, False, marker=b"100 Continue",
        expect_continue=True,
    )
    assert response.count(b"HTTP/1.1 100 Continue\r\n") == 1
    assert b"size 1000\n" in response


CUT_BODIES = {
    # Content-Length: 100,000, the client stops after 5,000 bytes.
    "length": b"Content-Length: 100000\r\n\r\n" + b"x" * 5000,
    # Chunked bodies cut within the 64 KiB read ahead of the handler.
    "chunk data": b"Transfer-Encoding: chunked\r\n\r\na\r\nhello",
    "chunk end": b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "size line": b"Transfer-Encoding: chunked\r\n\r\n3\r\n",
    "large chunk": b"Transfer-Encoding: chunked\r\n\r\nea6a\r\n" + b"x" * 60000,
}


@pytest.mark.parametrize("cut", CUT_BODIES.values(), ids=CUT_BODIES.keys())
def test_body_ended_early_is_400(shared_app, cut):
    # The client shuts its sending side before the body's end.
    host, _, port = shared_app.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\n" + cut)
        sock.shutdown(socket.SHUT_WR)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line, fields, _ = split_response(response)
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert fields[b"connection"] == [b"close"]


def test_waiting_client_gone_no_response(launch):
    # With one Python thread busy, a client that half-closes while it waits
    # for the thread counts as gone: its connection closes with no response.
    app = launch("handlers.py", "--threads", "1")
    slow = BackgroundGet(f"{app.url}/slow?s=2")
    app.wait_for_output("slow started", stream="stdout")
    assert half_closed_exchange(app.address, b"GET /items/1 HTTP/1.1\r\nHost: test\r\n\r\n") == b""
    assert slow.join().status_code == 200


def test_unread_large_body_announces_close(shared_app):
    # The handler ignores a body longer than the 256 KiB that the server
    # discards to keep the connection, so the response announces the close.
    head = b"POST /files/ignored HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n"
    response, _ = raw_request(shared_app, head + b"x" * 300_000)
    status_line, fields, _ = split_response(response)
    assert status_line == b"HTTP/1.1 200 OK"
    assert fields[b"connection"] == [b"close"]


def test_unread_long_body_not_awaited(shared_app):
    # Content-Length shows more than 256 KiB are left, so discarding the rest
    # cannot keep the connection: the response goes out at once, while the
    # client, which waits for it, sends nothing more. The 100 KB sent cover
    # the server's 64 KiB read-ahead, which waits before the handler runs.
    host, _, port = shared_app.address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = b"POST /files/ignored HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n"
        sock.sendall(head + b"x" * 100_000)
        response = b""
        while b"\r\n\r\n" not in response and (chunk := sock.recv(65536)):
            response += chunk
    status_line, fields, _ = split_response(response)
    assert status_line == b"HTTP/1.1 200 OK"
    assert fields[b"connection"] == [b"close"]


def test_streamed_response_to_unread_body_announces_close(shared_app):
    # The response starts before the handler returns, so the server cannot
    # discard the body first, and more than 256 KiB of it stays unread.
    head = b"POST /stream-ignoring-body HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n"
    response, _ = raw_request(shared_app, head + b"x" * 300_000)
    status_line, fields, body = split_response(response)
    assert status_line == b"HTTP/1.1 200 OK"
    assert fields[b"connection"] == [b"close"]
    assert fields[b"transfer-encoding"] == [b"chunked"]
    assert body.replace(b"\r\n", b"").endswith(b"x" * 1000 + b"0")


# Large bodies, streamed with bounded memory in the server.

LARGE = 100 * MiB
# The server process must stay well below the body size: the measured peak
# includes the interpreter, the Go runtime and buffers.
RSS_LIMIT_KIB = 60 * 1024


def test_upload_100mb_streamed(launch):
    app = launch("handlers.py")
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256()
    for _ in range(LARGE // len(block)):
        expected.update(block)

    def body():
        for _ in range(LARGE // len(block)):
            yield block

    with httpx.Client(base_url=app.url, timeout=120) as client:
        data = client.post("/digest", content=body()).json()
    assert data["size"] == LARGE
    assert data["sha256"] == expected.hexdigest()
    assert app.status("VmHWM") < RSS_LIMIT_KIB


def test_download_100mb_streamed(launch):
    app = launch("handlers.py")
    chunk = bytes(range(256)) * 256
    expected = hashlib.sha256()
    for _ in range(LARGE // len(chunk)):
        expected.update(chunk)

    received = hashlib.sha256()
    size = 0
    with httpx.Client(base_url=app.url, timeout=120) as client:
        with client.stream("GET", f"/download/{LARGE}") as response:
            assert response.headers.get("Transfer-Encoding") == "chunked"
            for piece in response.iter_raw():
                received.update(piece)
                size += len(piece)
    assert size == LARGE
    assert received.hexdigest() == expected.hexdigest()
    assert app.status("VmHWM") < RSS_LIMIT_KIB


# The response writer.


def test_writer_state(client):
    response = client.get("/writer-state")
    assert response.status_code == 201
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "X-Late" not in response.headers
    assert response.text[:1] == "x"
    data = json.loads(response.text[1:])
    assert data["states"] == [[200, False], [201, False], [201, False], [201, True]]
    assert data["errors"] == ["write_header called after the response header was sent"]


@pytest.mark.parametrize("status, line", [(103, b"HTTP/1.1 103 Early Hints"), (100, b"HTTP/1.1 100 Continue")])
def test_writer_informational_sent_first(shared_app, status, line):
    response, _ = raw_request(shared_app, f"GET /informational/{status} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
    informational, _, final = response.partition(b"\r\n\r\n")
    assert informational == line + b"\r\nLink: </style.css>; rel=preload"
    status_line, fields, body = split_response(final)
    assert status_line == b"HTTP/1.1 200 OK"
    assert fields[b"link"] == [b"</style.css>; rel=preload"]
    assert fields[b"content-type"] == [b"text/plain"]
    assert body == b"200 False"


def test_writer_informational_after_final_status(shared_app):
    response, _ = raw_request(shared_app, b"GET /informational-late HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    status_line, _, body = split_response(response)
    assert status_line == b"HTTP/1.1 200 OK"
    assert json.loads(body[1:]) == [
        "write_header(103) called after the final status or body bytes",
        "write_header(100) called after the final status or body bytes",
    ]


def test_writer_informational_skipped_for_http10(shared_app):
    response, _ = raw_request(shared_app, b"GET /informational/103 HTTP/1.0\r\nHost: test\r\n\r\n")
    status_line, fields, body = split_response(response)
    assert status_line == b"HTTP/1.0 200 OK"
    assert fields[b"link"] == [b"</style.css>; rel=preload"]
    assert body == b"200 False"


def test_writer_misuse(client):
    assert client.get("/misuse").json() == [
        "ValueError: invalid status code 99: must be 100-999",
        "ValueError: invalid status code 101: handlers cannot switch protocols",
        "ValueError: invalid status code 1000: must be 100-999",
        f"ValueError: invalid status code {2**70}: must be 100-999",
        "TypeError: invalid status '200': must be an int, such as 200",
        "TypeError: invalid status True: must be an int, such as 200",
        "write() expects bytes, bytearray, memoryview or str, not int",
    ]


def test_objects_invalid_after_return(client):
    keep_response = client.get("/keep")
    assert keep_response.text == "kept"
    assert keep_response.headers["x-kept"] == "yes"
    assert client.get("/use-kept").json() == [
        "request is no longer valid: its handler has returned",
        "request is no longer valid: its handler has returned",
        "response writer is no longer valid: its handler has returned",
        "yes",
        [],
    ]


def test_route_cleans_path(shared_app):
    response, _ = raw_request(shared_app, b"GET /a/../items/1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    status_line, fields, _ = split_response(response)
    assert status_line == b"HTTP/1.1 307 Temporary Redirect"
    assert fields[b"location"] == [b"/items/1"]


def test_handle_all_raw_paths(launch):
    app = launch("handle_all.py")
    request = b"PATCH /a/../b//c%2F?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    status_line, _, body = split_response(raw_request(app, request)[0])
    assert status_line == b"HTTP/1.1 200 OK"
    assert body == b"PATCH /a/../b//c%2F?q /a/../b//c/ /a/../b//c%2F {}"


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("size", [5, 200_000])
def test_writer_body_not_allowed(client, status, size):
    response = client.get(f"/no-body/{status}/{size}")
    assert response.status_code == status
    assert response.content == b""
