"""HTTP/1.1 hardening: raw request bytes over a socket to a real gobind
server process (tests/apps/security_app.py), checking status lines,
connection closing, and that smuggled requests never reach the app."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

APP = Path(__file__).parent / "apps" / "security_app.py"

# How long a test waits for the server to close a connection it must
# close, or for a response it must send. Only a bound: the tests assert
# what arrives, never how fast.
RECEIVE_SECONDS = 5.0


class App:
    """A running security_app.py process."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(APP), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # An editable install may print build lines before the app starts.
        line = self.process.stdout.readline()
        while line and not line.startswith("listening "):
            line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"app did not start: {line!r} {self.process.stderr.read()!r}")
        host, port = line.split()[1].rsplit(":", 1)
        self.address = (host, int(port))
        self.url = f"http://{host}:{port}"

    def seen(self) -> list[str]:
        """The "METHOD TARGET" lines of the requests the app received."""
        response = requests.get(f"{self.url}/_seen", timeout=RECEIVE_SECONDS)
        return response.text.splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module", params=["patterns", "handle_all"])
def app(request):
    running = App("--all") if request.param == "handle_all" else App()
    yield running
    running.stop()


@pytest.fixture
def start_app():
    started = []

    def start(*args: str) -> App:
        running = App(*args)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


class Exchange:
    """What the server sent back on one connection."""

    def __init__(self, data: bytes, closed: bool) -> None:
        self.data = data
        self.closed = closed
        self.responses = parse_responses(data)

    @property
    def statuses(self) -> list[str]:
        return [status for status, _, _ in self.responses]


def exchange(address, raw: bytes, *, expect_close: bool = True, responses: int = 1) -> Exchange:
    """Send raw on a new connection and collect what comes back: until the
    server closes the connection, or, when expect_close is false, until
    `responses` complete responses arrived."""
    with socket.create_connection(address) as sock:
        sock.sendall(raw)
        sock.settimeout(RECEIVE_SECONDS)
        data = b""
        while True:
            if not expect_close and len(parse_responses(data)) >= responses:
                return Exchange(data, closed=False)
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return Exchange(data, closed=False)
            if not chunk:
                return Exchange(data, closed=True)
            data += chunk


def parse_responses(data: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """Split data into complete responses: (status, headers, body)."""
    responses = []
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return responses
        lines = data[:head_end].decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 1)[1]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = data[head_end + 4 :]
        if "content-length" in headers:
            length = int(headers["content-length"])
            if len(rest) < length:
                return responses
            responses.append((status, headers, rest[:length]))
            data = rest[length:]
        else:
            responses.append((status, headers, rest))
            return responses


def get(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: example.test\r\n{extra}\r\n".encode()


# Heads whose framing a front proxy could read differently. Each is
# followed by a request for a unique /hidden path that must never reach
# the app.
SMUGGLING = {
    "length then chunked": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked then length": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "chunked capitalized": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    "two lengths": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "length list": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5, 5\r\n\r\nhello",
    "chunked twice": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
    b"0\r\n\r\n",
    "chunked not final": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked, identity\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "space before colon": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding : chunked\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "folded encoding": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nX-Pad: a\r\n Transfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "bare LF": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nX-Pad: a\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "http10 chunked": b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "http10 identity": b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: identity\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    "length plus sign": b"POST /submit HTTP/1.1\r\nHost: example.test\r\nContent-Length: +5\r\n\r\nhello",
}


@pytest.mark.parametrize("name", SMUGGLING)
def test_smuggling_rejected(app, name):
    hidden = "/hidden-" + name.replace(" ", "-")
    result = exchange(app.address, SMUGGLING[name] + get(hidden))
    assert result.statuses == ["400 Bad Request"]
    assert result.closed
    assert f"GET {hidden}" not in app.seen()


def test_smuggling_reason(app):
    result = exchange(app.address, SMUGGLING["length then chunked"] + get("/hidden-reason"))
    assert result.responses[0][2] == b"400 Bad Request: request has both Content-Length and Transfer-Encoding\n"


def test_http10_chunked_reason(app):
    result = exchange(app.address, SMUGGLING["http10 chunked"] + b"GET /b HTTP/1.0\r\n\r\n")
    assert result.responses[0][2] == b"400 Bad Request: Transfer-Encoding is not allowed in an HTTP/1.0 request\n"


def test_unsupported_coding(app):
    raw = b"POST /submit HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    result = exchange(app.address, raw + get("/hidden-gzip"))
    assert result.statuses == ["501 Not Implemented"]
    assert result.closed
    assert "GET /hidden-gzip" not in app.seen()


def test_chunked_keep_alive(app):
    raw = (
        b"POST /chunked HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n" + get("/after-chunked")
    )
    result = exchange(app.address, raw, expect_close=False, responses=2)
    assert result.statuses == ["200 OK", "200 OK"]
    assert result.responses[0][2] == b"POST /chunked 5\n"
    assert result.responses[1][2] == b"GET /after-chunked 0\n"


def test_chunked_upload_client(app):
    with requests.Session() as session:
        for i in range(2):
            response = session.post(f"{app.url}/chunked-client-{i}", data=iter([b"abc", b"defg"]), timeout=RECEIVE_SECONDS)
            assert response.text == f"POST /chunked-client-{i} 7\n"


def test_expect_continue(app):
    head = b"POST /continue HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with socket.create_connection(app.address) as sock:
        sock.settimeout(RECEIVE_SECONDS)
        sock.sendall(head)
        interim = sock.recv(65536)
        sock.sendall(b"hello")
        final = sock.recv(65536)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert parse_responses(final)[0][2] == b"POST /continue 5\n"


def test_pipelined_keep_alive(app):
    raw = get("/pipe-1") + b"POST /pipe-2 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc" + get("/pipe-3")
    result = exchange(app.address, raw, expect_close=False, responses=3)
    assert [body for _, _, body in result.responses] == [b"GET /pipe-1 0\n", b"POST /pipe-2 3\n", b"GET /pipe-3 0\n"]


def test_pipelined_bodies_all_served(app):
    # net/http's read between requests can already be in the next body when
    # a handler returns; cutting it short must not fail that body.
    raw = b"".join(
        b"POST /pipe-body-%d HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3000\r\n\r\n" % i + b"z" * 3000
        for i in range(200)
    )
    result = exchange(app.address, raw, expect_close=False, responses=200)
    assert result.statuses == ["200 OK"] * 200
    assert [body for _, _, body in result.responses] == [b"POST /pipe-body-%d 3000\n" % i for i in range(200)]


def test_rejection_after_response(app):
    raw = get("/before-bad") + b"DELETE * HTTP/1.1\r\nHost: example.test\r\n\r\n" + get("/hidden-after-bad")
    result = exchange(app.address, raw)
    assert result.statuses == ["200 OK", "400 Bad Request"]
    assert result.closed
    assert "GET /hidden-after-bad" not in app.seen()


def test_invalid_chunk_line(app):
    raw = (
        b"POST /bad-chunk HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5 \r\nhello\r\n0\r\n\r\n" + get("/hidden-bad-chunk")
    )
    result = exchange(app.address, raw)
    seen = app.seen()
    assert result.statuses == ["400 Bad Request"]
    assert result.responses[0][2] == b"Bad Request\n"
    assert result.closed
    assert "ValueError: invalid request body: invalid chunked framing in request body" in seen
    assert "GET /hidden-bad-chunk" not in seen


@pytest.mark.parametrize("trailer", [b"no colon\r\n", b": no name\r\n", b"X-T\x01: v\r\n", b" X-Folded: v\r\n"])
def test_invalid_trailer(app, trailer):
    raw = (
        b"POST /bad-chunk HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n" + get("/hidden-bad-trailer")
    )
    result = exchange(app.address, raw)
    seen = app.seen()
    assert result.statuses == ["400 Bad Request"]
    assert result.closed
    assert "ValueError: invalid request body: invalid chunked framing in request body" in seen
    assert "GET /hidden-bad-trailer" not in seen


def test_content_length_allocates_nothing_ahead(app):
    # A body that claims 1 TB and brings 3 bytes: reading it must fail
    # for the missing bytes, not for memory allocated ahead of them.
    with socket.create_connection(app.address) as sock:
        sock.sendall(b"POST /claims-terabyte HTTP/1.1\r\nHost: example.test\r\nContent-Length: 1000000000000\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(RECEIVE_SECONDS)
        while sock.recv(65536):
            pass
    seen = app.seen()
    assert "POST /claims-terabyte" in seen
    assert "ConnectionError: reading request body failed: unexpected EOF" in seen


@pytest.mark.parametrize("method", ["DELETE", "GET", "POST"])
def test_asterisk_rejected(app, method):
    result = exchange(app.address, f"{method} * HTTP/1.1\r\nHost: example.test\r\n\r\n".encode())
    assert result.statuses == ["400 Bad Request"]
    assert result.closed
    assert f"{method} *" not in app.seen()


def test_asterisk_reason(app):
    result = exchange(app.address, b"DELETE * HTTP/1.1\r\nHost: example.test\r\n\r\n")
    assert result.responses[0][2] == b"400 Bad Request: asterisk-form target is allowed only with OPTIONS\n"


def test_options_asterisk(app):
    raw = b"OPTIONS * HTTP/1.1\r\nHost: example.test\r\n\r\n" + get("/after-options")
    result = exchange(app.address, raw, expect_close=False, responses=2)
    assert result.statuses == ["200 OK", "200 OK"]


@pytest.mark.parametrize("target", ["example.test:80", "relative/path", "?query", "http:/x"])
def test_target_form_rejected(app, target):
    result = exchange(app.address, get(target))
    assert result.statuses == ["400 Bad Request"]
    assert result.closed


def test_absolute_form(app):
    result = exchange(app.address, get("http://example.test/absolute"), expect_close=False)
    assert result.statuses == ["200 OK"]
    assert "GET http://example.test/absolute" in app.seen()


def test_connect_rejected(app):
    raw = b"CONNECT upstream.example.test:443 HTTP/1.1\r\nHost: upstream.example.test:443\r\n\r\n"
    result = exchange(app.address, raw + get("/hidden-connect"))
    assert result.statuses == ["501 Not Implemented"]
    assert result.closed
    assert not [line for line in app.seen() if line.startswith("CONNECT") or line == "GET /hidden-connect"]


def test_connect_registered(start_app):
    app = start_app("--connect")
    raw = b"CONNECT upstream.example.test:443 HTTP/1.1\r\nHost: upstream.example.test:443\r\n\r\n"
    result = exchange(app.address, raw + get("/hidden-tunnel"))
    # The request passes the connection checks; ServeMux matches no path
    # in an authority-form target, so the pattern router responds with 405.
    assert result.statuses == ["405 Method Not Allowed"]
    assert result.closed
    assert "GET /hidden-tunnel" not in app.seen()


def test_long_cookie(app):
    result = exchange(app.address, get("/cookie", "Cookie: " + "a" * 70_000 + "\r\n"))
    assert result.statuses == ["431 Request Header Fields Too Large"]
    assert result.closed
    assert result.responses[0][2] == b'431 Request Header Fields Too Large: header field "Cookie" exceeds 8190 bytes\n'


def test_rejection_logged(start_app):
    app = start_app()
    with socket.create_connection(app.address, timeout=RECEIVE_SECONDS) as sock:
        client = "%s:%d" % sock.getsockname()[:2]
        sock.sendall(get("/cookie", "Cookie: " + "a" * 70_000 + "\r\n"))
        while sock.recv(65536):
            pass
    app.stop()
    log = app.process.stderr.read()
    assert (
        f'rejected a request from {client}: 431 Request Header Fields Too Large: header field "Cookie" exceeds 8190 bytes'
        in log
    )


def test_long_target(app):
    result = exchange(app.address, get("/" + "a" * 70_000))
    assert result.statuses == ["414 Request URI Too Long"]
    assert result.closed
    assert result.responses[0][2] == b"414 Request URI Too Long: request line exceeds 8190 bytes\n"


def test_field_at_limit(app):
    value = "a" * (8190 - len("Cookie: "))
    result = exchange(app.address, get("/cookie-limit", f"Cookie: {value}\r\n"), expect_close=False)
    assert result.statuses == ["200 OK"]


def test_field_over_limit(app):
    value = "a" * (8191 - len("Cookie: "))
    result = exchange(app.address, get("/cookie-over", f"Cookie: {value}\r\n"))
    assert result.statuses == ["431 Request Header Fields Too Large"]


def test_request_line_at_limit(app):
    target = "/" + "a" * (8190 - len("GET / HTTP/1.1"))
    result = exchange(app.address, get(target), expect_close=False)
    assert result.statuses == ["200 OK"]


def test_request_line_over_limit(app):
    target = "/" + "a" * (8191 - len("GET / HTTP/1.1"))
    result = exchange(app.address, get(target))
    assert result.statuses == ["414 Request URI Too Long"]


def test_too_many_fields(app):
    fields = "".join(f"X-Field-{i}: {i}\r\n" for i in range(100))  # plus Host: 101
    result = exchange(app.address, get("/many-fields", fields))
    assert result.statuses == ["431 Request Header Fields Too Large"]
    assert result.closed
    assert result.responses[0][2] == b"431 Request Header Fields Too Large: more than 100 header fields\n"


def test_head_too_large(app):
    fields = "".join(f"X-Field-{i}: {'v' * 1000}\r\n" for i in range(70))
    result = exchange(app.address, get("/large-head", fields))
    assert result.statuses == ["431 Request Header Fields Too Large"]
    assert result.closed


def test_configured_limits(start_app):
    app = start_app("--max-header-fields", "3", "--max-request-line-bytes", "64", "--max-header-field-bytes", "40")
    fields = exchange(app.address, get("/fields", "A: 1\r\nB: 2\r\nC: 3\r\n"))
    line = exchange(app.address, get("/" + "a" * 64))
    field = exchange(app.address, get("/field", "Cookie: " + "a" * 40 + "\r\n"))
    assert fields.statuses == ["431 Request Header Fields Too Large"]
    assert line.statuses == ["414 Request URI Too Long"]
    assert field.statuses == ["431 Request Header Fields Too Large"]


def test_configured_limit_invalid():
    import gobind

    with pytest.raises(ValueError, match=r"^invalid max_header_fields 0: must be 1 or more$"):
        gobind.Server(max_header_fields=0)


def test_leading_empty_line(app):
    result = exchange(app.address, b"\r\n" + get("/leading"), expect_close=False)
    assert result.statuses == ["200 OK"]
    assert result.responses[0][2] == b"GET /leading 0\n"


def test_empty_lines_between_requests(app):
    raw = b"POST /first HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nok\r\n\r\n" + get("/second")
    result = exchange(app.address, raw, expect_close=False, responses=2)
    assert result.statuses == ["200 OK", "200 OK"]
    assert result.responses[1][2] == b"GET /second 0\n"


def test_body_stops_short(start_app):
    app = start_app("--read-timeout", "1")
    raw = b"POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\n12345678"
    result = exchange(app.address, raw)
    seen = app.seen()
    assert result.statuses == ["408 Request Timeout"]
    assert result.closed
    assert seen[0] == "POST /upload"
    assert re.fullmatch(
        r"TimeoutError: \[Errno 110\] reading request body timed out: read tcp [\d.:]+->[\d.:]+: i/o timeout",
        seen[1],
    )


def test_body_timeout_handled(start_app):
    app = start_app("--read-timeout", "1")
    raw = b"POST /upload-handled HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\n12345678"
    result = exchange(app.address, raw)
    assert result.statuses == ["422 Unprocessable Entity"]
    assert result.responses[0][2] == b"request body incomplete\n"
    assert result.closed


def test_slowloris(app):
    trickling = []
    try:
        for _ in range(200):
            sock = socket.create_connection(app.address)
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: example.test\r\n")
            trickling.append(sock)
        for second in range(5):
            for sock in trickling:
                sock.sendall(f"X-Trickle-{second}: {second}\r\n".encode())
            response = requests.get(f"{app.url}/normal-{second}", timeout=RECEIVE_SECONDS)
            assert response.status_code == 200
            time.sleep(1)
        assert not [line for line in app.seen() if line.startswith("GET /slow")]
    finally:
        for sock in trickling:
            sock.close()
