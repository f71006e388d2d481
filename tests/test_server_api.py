"""The Server object's state, waits and shutdown results, in this process."""

from __future__ import annotations

import errno
import logging
import math
import re
import threading
import time

import httpx
import pytest

import gobind


@pytest.fixture
def server():
    server = gobind.Server()
    yield server
    server.close()


def test_address_before_start(server):
    assert server.address is None
    assert server.url is None
    assert repr(server) == "<gobind.Server not started>"


def test_address_after_start(server):
    address = server.start("127.0.0.1", 0)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", address)
    assert server.address == address
    assert server.url == f"http://{address}"
    assert repr(server) == f"<gobind.Server http://{address}>"


def test_address_unix(server, tmp_path):
    path = tmp_path / "s.sock"
    assert server.start(uds=str(path)) == f"unix:{path}"
    assert server.url == f"unix:{path}"


def test_start_on_opened_listener(server):
    fd, bound = gobind._gobind.open_listener("127.0.0.1:0")
    server.handle("GET /", lambda w, req: w.write("from fd"))
    assert server.start(fd=fd) == bound
    assert httpx.get(f"http://{bound}/", timeout=10).text == "from fd"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fd": -1}, "invalid fd -1: must be a descriptor number, 0 or more"),
        ({"fd": True}, "invalid fd True: must be a descriptor number, 0 or more"),
        ({"fd": 3, "uds": "x.sock"}, "uds and fd cannot be given together"),
    ],
)
def test_start_invalid_fd(server, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        server.start(**kwargs)


def test_open_listener_port_in_use(server):
    address = server.start("127.0.0.1", 0)
    with pytest.raises(OSError) as raised:
        gobind._gobind.open_listener(address)
    assert raised.value.errno == errno.EADDRINUSE


def test_wait_while_serving(server):
    server.start("127.0.0.1", 0)
    assert server.wait(0) is False
    assert server.wait(0.05) is False


def test_wait_after_close(server):
    server.start("127.0.0.1", 0)
    server.close()
    assert server.wait(0) is True
    assert server.wait() is True


def test_shutdown_idle(server):
    server.start("127.0.0.1", 0)
    assert server.shutdown(5) is True
    assert server.wait(0) is True
    assert server.shutdown(5) is True


def test_shutdown_not_started(server):
    assert server.shutdown(1) is True


def test_shutdown_timeout_cuts_request(server, caplog):
    entered = threading.Event()
    release = threading.Event()

    @server.route("GET /hold")
    def hold(w, req):
        entered.set()
        release.wait(30)
        w.write("late")

    address = server.start("127.0.0.1", 0)
    outcome = []
    client = threading.Thread(target=lambda: outcome.append(_get(f"http://{address}/hold")))
    client.start()
    assert entered.wait(30)
    with caplog.at_level(logging.INFO, logger="gobind"):
        graceful = server.shutdown(0.2)
    release.set()
    client.join(30)
    assert graceful is False
    assert "Graceful shutdown timed out after 0.2 s; closed the remaining connections" in caplog.messages
    assert isinstance(outcome[0], httpx.TransportError)


def test_serve_returns_after_shutdown(server):
    server.start("127.0.0.1", 0)
    stopper = threading.Thread(target=server.shutdown, args=(5,))
    stopper.start()
    server.serve()
    stopper.join(30)
    assert server.wait(0) is True


def _get(url):
    try:
        return httpx.get(url, timeout=30)
    except httpx.TransportError as error:
        return error


def test_unix_socket_removed_on_shutdown(server, tmp_path):
    path = tmp_path / "s.sock"
    server.start(uds=str(path))
    assert path.exists()
    server.shutdown(5)
    assert not path.exists()


def test_shutdown_infinite_timeout(server):
    @server.route("GET /slow")
    def slow(w, req):
        entered.set()
        time.sleep(0.3)
        w.write("done")

    entered = threading.Event()
    address = server.start("127.0.0.1", 0)
    outcome = []
    client = threading.Thread(target=lambda: outcome.append(_get(f"http://{address}/slow")))
    client.start()
    assert entered.wait(30)
    graceful = server.shutdown(math.inf)
    client.join(30)
    assert graceful is True
    assert outcome[0].text == "done"


def test_wait_infinite_timeout(server):
    server.start("127.0.0.1", 0)
    server.close()
    assert server.wait(math.inf) is True
