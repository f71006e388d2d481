"""Slow and malformed request bodies, over-long responses and invalid
arguments: each case a server must survive without hurting other clients."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

import gobind
from cliserver import run_to_exit
from conftest import AppProcess


def connect(app: AppProcess) -> socket.socket:
    host, _, port = app.address.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=30)


def receive_all(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_slow_body_holds_no_slot(launch):
    app = launch("handlers.py", "--threads", "1")
    with connect(app) as stalled:
        stalled.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
        response = httpx.get(app.url + "/items/7", timeout=5)
    assert response.status_code == 200


def test_silent_body_gets_408(launch):
    app = launch("handlers.py", "--threads", "1", "--read-timeout", "0.5")
    with connect(app) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc")
        response = receive_all(sock)
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_malformed_chunked_body_gets_400(launch):
    app = launch("handlers.py", "--threads", "1")
    with connect(app) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        response = receive_all(sock)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_body_past_content_length_trimmed(handlers_app: AppProcess):
    response = httpx.get(handlers_app.url + "/over-length")
    assert response.content == b"01234"
    assert handlers_app.wait_for_output("is longer than its Content-Length")


def test_body_short_of_content_length_logged(handlers_app: AppProcess):
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(handlers_app.url + "/under-length")
    assert handlers_app.wait_for_output(
        "response to GET /under-length ended 6 bytes short of its Content-Length; the connection is closed"
    )


def test_wait_returns_after_drain():
    server = gobind.Server(access_log=False)
    finished = threading.Event()

    @server.route("GET /slow")
    def slow(w, req):
        time.sleep(1.0)
        finished.set()
        w.write(b"done")

    server.start("127.0.0.1", 0)
    client = threading.Thread(target=httpx.get, args=(server.url + "/slow",), kwargs={"timeout": 10})
    client.start()
    time.sleep(0.3)
    stopper = threading.Thread(target=server.shutdown, args=(10,))
    stopper.start()
    time.sleep(0.1)
    assert server.wait(10)
    assert finished.is_set()
    stopper.join()
    client.join()


def test_negative_shutdown_timeout_rejected():
    with pytest.raises(ValueError, match=r"^invalid shutdown_timeout -1: must be 0 or more seconds$"):
        gobind.Server(shutdown_timeout=-1)


def test_negative_shutdown_argument_rejected():
    server = gobind.Server()
    with pytest.raises(ValueError, match=r"^invalid timeout -5: must be 0 or more seconds$"):
        server.shutdown(-5)


def test_async_handler_rejected():
    server = gobind.Server()

    async def handler(w, req):
        pass

    with pytest.raises(TypeError, match=r"^handler for '/a' is an async function"):
        server.route("/a")(handler)


def test_empty_host_rejected():
    server = gobind.Server()
    with pytest.raises(ValueError, match=r"^invalid host '': give an address such as 127.0.0.1"):
        server.start("", 0)


def test_start_after_shutdown_message():
    server = gobind.Server()
    server.start("127.0.0.1", 0)
    server.shutdown(1)
    with pytest.raises(RuntimeError, match=r"^server was stopped and cannot start again; create a new server$"):
        server.start("127.0.0.1", 0)


@pytest.mark.parametrize(
    "header, message",
    [
        ("Bad Name:1", "gobind: error: invalid --header 'Bad Name:1': invalid header name \"Bad Name\": "
                       "only letters, digits and !#$%&'*+-.^_`|~ are allowed"),
        ("X-A:\u03a9", "gobind: error: invalid --header 'X-A:\u03a9': the value must be latin-1 text"),
    ],
)
def test_cli_header_checked_at_start(header, message):
    result = run_to_exit("cli_apps:hello", "--header", header)
    assert result.stderr.strip().splitlines()[-1] == message
    assert result.returncode == 1
