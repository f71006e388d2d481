"""The ASGI protocol as a plain app receives it: scope values, receive() and
send() semantics, errors, extensions and lifespan state."""

import asyncio
import hashlib
import json
import os
import socket
import threading
import time

import httpx
import pytest

from asgi_server import AsgiProcess
from conftest import BackgroundGet, half_closed_exchange, upload_in_two_parts


@pytest.fixture(scope="module")
def server():
    process = AsgiProcess("raw_app:app")
    assert process.url is not None, process.text
    yield process
    assert process.stop() == 0


def raw_exchange(server, request: bytes, timeout: float = 30) -> bytes:
    """Send request bytes on a new connection and return all the server
    sends until it closes the connection."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def read_scope(server, target, **kwargs):
    response = httpx.get(server.url + target, **kwargs)
    assert response.status_code == 200
    return response.json()


def test_scope_fixed_values(server):
    scope = read_scope(server, "/scope")
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == ""


def test_scope_path_and_query(server):
    scope = read_scope(server, "/scope/caf%C3%A9%20x?a=1&b=%20&a=2")
    assert scope["path"] == "/scope/caf\u00e9 x"
    assert scope["raw_path"] == {"bytes": "/scope/caf%C3%A9%20x"}
    assert scope["query_string"] == {"bytes": "a=1&b=%20&a=2"}


def test_scope_headers_raw_lowercase(server):
    scope = read_scope(server, "/scope", headers=[("X-Custom", "One"), ("X-Custom", "Two")])
    headers = [(name["bytes"], value["bytes"]) for name, value in scope["headers"]]
    host = server.url.removeprefix("http://")
    assert ("host", host) in headers
    assert [value for name, value in headers if name == "x-custom"] == ["One", "Two"]
    assert all(name == name.lower() for name, _ in headers)


def test_scope_client_and_server(server):
    scope = read_scope(server, "/scope")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    assert scope["server"] == [host, int(port)]
    assert scope["client"][0] == "127.0.0.1"
    assert isinstance(scope["client"][1], int)


def test_scope_extensions(server):
    scope = read_scope(server, "/scope")
    assert scope["extensions"] == {"http.response.pathsend": {}, "http.response.trailers": {}}


def test_scope_lifespan_state(server):
    scope = read_scope(server, "/scope")
    assert scope["state"] == {"greeting": "hello from lifespan"}


def test_http10_version(server):
    data = raw_exchange(server, b"GET /scope HTTP/1.0\r\nHost: x\r\n\r\n")
    scope = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert scope["http_version"] == "1.0"


def test_echo_small_body(server):
    response = httpx.post(server.url + "/echo", content=b"hello body")
    assert response.content == b"hello body"
    assert response.headers["x-chunks"] == "1"


def test_echo_streamed_body(server):
    def chunks():
        for _ in range(40):
            yield b"y" * 10000

    response = httpx.post(server.url + "/echo", content=chunks())
    assert response.status_code == 200
    assert response.content == b"y" * 400000
    assert int(response.headers["x-chunks"]) > 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_half_closed_body_arrives_whole(server, chunked):
    # A client that shuts its sending side after the request counts as
    # disconnected, as in uvicorn. The whole body reaches the app first.
    body = b"hello half-closed"
    if chunked:
        head = b"Transfer-Encoding: chunked\r\n"
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        head = b"Content-Length: %d\r\n" % len(body)
        payload = body
    address = server.url.removeprefix("http://")
    keys = [f"{'chunked' if chunked else 'length'}-{attempt}" for attempt in range(20)]
    for key in keys:
        request = b"POST /record-events?%s HTTP/1.1\r\nHost: x\r\n%s\r\n%s" % (key.encode(), head, payload)
        assert half_closed_exchange(address, request) == b""
    deadline = time.monotonic() + 10
    while True:
        received = httpx.get(server.url + "/facts").json()["received"]
        if all(received.get(key, [""])[-1] == "disconnect" for key in keys) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for key in keys:
        assert received.get(key) == [[body.decode(), False], "disconnect"], key


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_read_after_response_began(server, chunked):
    # The app sends the start of its response after the first body message,
    # then reads the rest, which the client sends only once that start arrived.
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        server.url.removeprefix("http://"), "/respond-then-read", body, 100_000, chunked, marker=b"first "
    )
    assert early.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_after_streamed_start_expect_continue(server, chunked):
    body = os.urandom(200_000)
    early, response = upload_in_two_parts(
        server.url.removeprefix("http://"), "/stream-then-read", body, 0, chunked, marker=b"100 Continue",
        expect_continue=True,
    )
    assert early.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n".encode() in response


def test_unread_large_body_announces_close(server):
    # /status responds without reading the body, which is longer than the
    # 256 KiB the server discards to keep the connection.
    head = b"POST /status?200 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
    response = raw_exchange(server, head + b"x" * 300_000)
    assert b"\r\nConnection: close\r\n" in response.partition(b"\r\n\r\n")[0]


def test_response_with_read_pending_announces_close(server):
    # The body's end is unknown while a read is pending, so the connection
    # cannot carry another request.
    response = raw_exchange(
        server, b"POST /respond-with-read-pending HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
    )
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in head
    assert body == b"body"


def test_cancelled_receive_loses_nothing(server):
    def slow_chunks():
        time.sleep(0.2)
        yield b"a" * 100000
        yield b"b" * 100000

    response = httpx.post(server.url + "/cancelled-receive", content=slow_chunks())
    assert response.text == "200000"


def test_pathsend_cut_at_declared_length(server):
    # As for a body, bytes past the app's own Content-Length are not sent.
    response = httpx.get(server.url + "/pathsend?declared")
    with open(__file__.replace("test_asgi_raw.py", "apps/raw_app.py"), "rb") as source:
        expected = source.read(10)
    assert response.status_code == 200
    assert response.content == expected


@pytest.mark.parametrize(
    "query, error",
    [
        ("", 'ValueError: conflicting Content-Length values "5" and "6": a response has one length'),
        ("signed", 'ValueError: invalid Content-Length "+5": it must be a number of bytes, digits only'),
    ],
)
def test_bad_content_length_is_500(server, query, error):
    response = httpx.get(server.url + "/lengths?" + query)
    assert response.status_code == 500
    assert server.logs(error)


def test_body_short_of_content_length_logged(server):
    reply = raw_exchange(server, b"GET /lengths?short HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.endswith(b"\r\n\r\nhello")
    assert server.logs("response to GET /lengths ended 3 bytes short of its Content-Length; the connection is closed")


def test_repeated_content_length_sent_once(server):
    response = raw_exchange(server, b"GET /lengths?same HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.lower().count(b"\r\ncontent-length: 5") == 1
    assert body == b"hello"


def test_double_start_is_500(server):
    response = httpx.get(server.url + "/double-start")
    assert response.status_code == 500
    assert server.logs("RuntimeError: Expected ASGI message 'http.response.body', but got 'http.response.start'.")


@pytest.mark.parametrize(
    "status, error",
    [
        ("103", "ValueError: invalid status 103 in 'http.response.start': must be 200-999"),
        ("42", "ValueError: invalid status 42 in 'http.response.start': must be 200-999"),
        ("1000", "ValueError: invalid status 1000 in 'http.response.start': must be 200-999"),
        ("true", "TypeError: invalid status True in 'http.response.start': must be an int, such as 200"),
        ("200.0", "TypeError: invalid status 200.0 in 'http.response.start': must be an int, such as 200"),
        ("%22200%22", "TypeError: invalid status '200' in 'http.response.start': must be an int, such as 200"),
    ],
)
def test_invalid_status_is_500(server, status, error):
    reply = raw_exchange(server, f"GET /status?{status} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert reply.count(b"HTTP/1.1 ") == 1
    assert server.logs(error)


def test_body_before_start_is_500(server):
    response = httpx.get(server.url + "/body-first")
    assert response.status_code == 500
    assert server.logs("RuntimeError: Expected ASGI message 'http.response.start', but got 'http.response.body'.")


def test_exception_is_500(server):
    response = httpx.get(server.url + "/fail")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert server.logs("ValueError: the handler failed")


def test_no_response_is_500(server):
    response = httpx.get(server.url + "/no-response")
    assert response.status_code == 500
    assert server.logs("ASGI callable returned without starting response.")


def test_pathsend_serves_file(server):
    response = httpx.get(server.url + "/pathsend")
    with open(__file__.replace("test_asgi_raw.py", "apps/raw_app.py"), "rb") as source:
        expected = source.read()
    assert response.status_code == 200
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    # The access line counts the file's bytes.
    assert server.logs(f'"GET /pathsend HTTP/1.1" 200 {len(expected)} ')


@pytest.mark.parametrize(
    "query, error",
    [
        ("missing", "FileNotFoundError"),
        ("directory", "IsADirectoryError: [Errno 21] http.response.pathsend needs a file"),
        ("fifo", "OSError: [Errno 22] http.response.pathsend needs a regular file"),
    ],
)
def test_pathsend_without_file_is_500(server, query, error):
    response = httpx.get(server.url + "/pathsend?" + query)
    assert response.status_code == 500
    assert server.logs(f'"GET /pathsend?{query} HTTP/1.1" 500 ')
    assert server.logs(error)


def test_trailers_sent(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\nX-Checksum: abc123\r\n\r\n")


def wait_for_fact(server, name):
    for _ in range(200):
        value = httpx.get(server.url + "/facts").json()[name]
        if value is not None:
            return value
        time.sleep(0.05)
    return None


def test_send_after_disconnect_raises(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /send-after-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
    assert wait_for_fact(server, "send_after_disconnect") == "ClientDisconnected"


def test_stream_stops_on_disconnect(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n")
        client = "%s:%d" % sock.getsockname()[:2]
        assert len(sock.recv(65536)) > 0
    assert wait_for_fact(server, "stream_end") == "OSError"
    # The access line of the cut response.
    assert server.logs(f'gobind.access: {client} - "GET /stream-forever HTTP/1.1" 200 ')


def test_slow_client_bounds_buffer(server):
    # A client that reads nothing: the app's sends must stall instead of
    # the server buffering the stream.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(1.0)
    with open(f"/proc/{server.pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    sock.close()
    # 1 s of an unthrottled stream is well over 1 GiB of 16 KiB chunks.
    assert rss_kib < 400 * 1024


async def sleep_requests(host, port, connections, rounds):
    # Every connection is open before the first request, so that the
    # requests overlap inside the app.
    streams = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(connections)))

    async def client(reader, writer):
        statuses = []
        for _ in range(rounds):
            writer.write(b"GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            statuses.append(int(head.split(b" ")[1]))
        writer.close()
        return statuses

    results = await asyncio.gather(*(client(reader, writer) for reader, writer in streams))
    return [status for statuses in results for status in statuses]


def test_threads_bounded_at_512_connections(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    counts = []
    done = False

    def sample():
        while not done:
            counts.append(len(os.listdir(f"/proc/{server.pid}/task")))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        statuses = asyncio.run(sleep_requests(host, int(port), 512, 3))
    finally:
        done = True
        sampler.join()
    assert statuses == [200] * 1536
    assert httpx.get(server.url + "/facts").json()["max_inflight"] >= 128
    assert max(counts) <= 32


async def echo_requests(host, port, bodies):
    # One connection per body list, all at once, so that the responses of
    # many connections share the loop iterations that submit them to Go.
    async def client(own_bodies):
        reader, writer = await asyncio.open_connection(host, port)
        echoed = []
        for body in own_bodies:
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            echoed.append(await reader.readexactly(length))
        writer.close()
        return echoed

    return await asyncio.gather(*(client(own_bodies) for own_bodies in bodies))


def test_concurrent_echoes_keep_their_bytes(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sizes = [1, 100, 10_000, 70_000, 300_000]
    bodies = [
        [os.urandom(sizes[(connection + round_) % len(sizes)]) for round_ in range(6)] for connection in range(48)
    ]
    echoed = asyncio.run(echo_requests(host, int(port), bodies))
    for sent, received in zip(bodies, echoed):
        assert [len(body) for body in received] == [len(body) for body in sent]
        assert received == sent


@pytest.mark.parametrize("body", [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabc\r\n0\r\nno colon\r\n\r\n"])
def test_invalid_chunked_body_gets_400(server, body):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        client = "%s:%d" % sock.getsockname()[:2]
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in response
    line = f'gobind.access: {client} - "POST /echo HTTP/1.1" 400 12 '
    assert server.logs(line)
    assert server.text.count(line) == 1


def test_waiting_client_gone_no_response():
    # With one request allowed inside the app, a client that half-closes
    # while it waits counts as gone: its connection closes with no response.
    process = AsgiProcess("raw_app:app", "--max-concurrency", "1")
    try:
        holder = BackgroundGet(process.url + "/hold")
        assert process.logs("hold started")
        address = process.url.removeprefix("http://")
        assert half_closed_exchange(address, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n") == b""
        response = holder.join()
        assert response.status_code == 200
        assert response.content == b"held"
    finally:
        process.stop()


def test_stalled_client_one_log_line():
    # A client that stops reading makes send() fail with the write timeout.
    # The app lets the error escape, which is logged as one line, as for
    # handlers, and not as an application error with a traceback.
    process = AsgiProcess("raw_app:app", "--write-timeout", "1")
    try:
        host, _, port = process.url.removeprefix("http://").rpartition(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /stream-until-failure HTTP/1.1\r\nHost: x\r\n\r\n")
            assert process.logs("INFO gobind: Client timed out during GET /stream-until-failure: timed out: ")
    finally:
        process.stop()
    assert "Exception in ASGI application" not in process.text
