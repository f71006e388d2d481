"""HTTPS, HTTP/2 and the request head limits, set from the gobind command."""

import shutil
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

from cliserver import run_to_exit, start

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def curl(*args):
    result = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_curl
def test_https_negotiates_http2(certificate):
    cert, key = certificate
    with start("cli_apps:protocol", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server:
        assert server.url.startswith("https://")
        assert curl("-k", "--http2", server.url + "/") == "HTTP/2.0 https"
        assert curl("-k", "--http1.1", server.url + "/") == "HTTP/1.1 https"


@needs_curl
def test_http2_cleartext_prior_knowledge():
    with start("cli_apps:protocol", "--http2-cleartext") as server:
        assert curl("--http2-prior-knowledge", server.url + "/") == "HTTP/2.0 http"
        assert curl(server.url + "/") == "HTTP/1.1 http"


@needs_curl
def test_http2_cleartext_off_by_default():
    with start("cli_apps:protocol") as server:
        result = subprocess.run(["curl", "-s", "--max-time", "10", "--http2-prior-knowledge", server.url + "/"],
                                capture_output=True, text=True)
    assert result.returncode != 0


def test_ssl_keyfile_missing():
    result = run_to_exit("cli_apps:protocol", "--ssl-certfile", "cert.pem")
    assert result.stderr.strip().splitlines()[-1] == "gobind: error: --ssl-certfile and --ssl-keyfile must be given together"
    assert result.returncode == 1


def test_ssl_certfile_not_found(tmp_path):
    missing = tmp_path / "missing.pem"
    result = run_to_exit("cli_apps:protocol", "--ssl-certfile", str(missing), "--ssl-keyfile", str(missing))
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gobind: error: loading TLS certificate '{missing}' and key '{missing}' failed") or \
        last.startswith(f'gobind: error: loading TLS certificate "{missing}" and key "{missing}" failed')
    assert result.returncode == 1


def raw_status(url, request):
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as client:
        client.sendall(request)
        return client.recv(4096).split(b"\r\n", 1)[0]


def test_limit_request_line_option():
    with start("cli_apps:protocol", "--limit-request-line-bytes", "100") as server:
        long_target = b"/" + b"a" * 200
        assert raw_status(server.url, b"GET " + long_target + b" HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 414 Request URI Too Long"
        assert raw_status(server.url, b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 200 OK"


def test_limit_request_fields_option():
    with start("cli_apps:protocol", "--limit-request-fields", "3") as server:
        fields = b"".join(b"X-F%d: v\r\n" % i for i in range(5))
        status = raw_status(server.url, b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"


@pytest.mark.parametrize("tls", [False, True])
def test_shutdown_serves_request_of_fresh_connection(certificate, tls):
    """A request sent after a shutdown began, on a connection accepted
    before it, is served: net/http alone would close that connection."""
    import ssl
    import threading
    import time

    import gobind

    cert, key = certificate
    options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)} if tls else {}
    server = gobind.Server(access_log=False, **options)
    server.handle("GET /", lambda w, req: w.write("served"))
    host, port = server.start("127.0.0.1", 0).rsplit(":", 1)
    try:
        conn = socket.create_connection((host, int(port)), timeout=10)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = context.wrap_socket(conn)  # the handshake completes here
        time.sleep(0.1)  # until the engine has accepted the connection
        stopper = threading.Thread(target=server.shutdown, args=(10,))
        stopper.start()
        time.sleep(0.05)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
        conn.close()
        stopper.join(15)
        assert received.startswith(b"HTTP/1.1 200 OK")
        assert received.endswith(b"served")
    finally:
        server.close()



def test_engine_log_to_python(certificate):
    # Bytes that are neither TLS nor HTTP make net/http log a handshake
    # error, which reaches Python's gobind.server logger.
    cert, key = certificate
    with start("cli_apps:protocol", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server:
        address = urlsplit(server.url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
            sock.sendall(b"\x00" * 64)
            sock.recv(1024)
        assert server.wait_output("WARNING gobind.server: http: TLS handshake error from 127.0.0.1:")
