"""Start, stop, signals, fork, interpreter exit, threads and listeners."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import AppProcess, BackgroundGet, half_closed_exchange, read_steadily

FORK_MESSAGE = (
    "gobind cannot run in a process forked after it was loaded: the Go runtime does not survive "
    'fork(). Start worker processes with spawn or exec instead (multiprocessing.set_start_method("spawn")).'
)


# Start and stop lines.


def test_start_line_pid(handlers_app: AppProcess):
    assert handlers_app.logged_pid == handlers_app.pid


def test_start_line_threads(launch):
    app = launch("handlers.py", "--threads", "3")
    assert re.search(r"INFO gobind: Serving on http://127\.0\.0\.1:\d+ \(pid \d+, 3 Python threads\)\n", app.stderr)


# Signals.


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_graceful(handlers_app: AppProcess, signum):
    request = BackgroundGet(f"{handlers_app.url}/slow?seconds=2")
    handlers_app.wait_for_output("slow started", stream="stdout")
    handlers_app.send_signal(signum)

    assert handlers_app.wait(60) == 0
    response = request.join()
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200
    assert response.text == "slow done"
    assert "run returned" in handlers_app.stdout
    assert "INFO gobind: Shutting down: 1 request in flight, 1 connection open\n" in handlers_app.stderr
    assert "INFO gobind: Stopped\n" in handlers_app.stderr


def test_shutdown_counts_and_logs_waiting_requests(launch):
    # Two requests wait for the only Python thread: the shutdown line counts
    # them, and when the shutdown timeout closes their connections, each
    # dropped request is logged.
    app = launch("handlers.py", "--threads", "1", "--shutdown-timeout", "1")
    slow = BackgroundGet(f"{app.url}/slow?seconds=4")
    app.wait_for_output("slow started", stream="stdout")
    host, _, port = app.address.rpartition(":")
    waiting = []
    for path in (b"/items/1", b"/items/2"):
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n\r\n")
        waiting.append(sock)
    try:
        # The server reads each request within milliseconds of its arrival.
        time.sleep(1)
        app.send_signal(signal.SIGTERM)
        app.wait_for_output("Shutting down")
        for sock in waiting:
            assert sock.recv(65536) == b""
    finally:
        for sock in waiting:
            sock.close()

    app.wait(60)
    assert "INFO gobind: Shutting down: 3 requests in flight, 3 connections open\n" in app.stderr
    for path in ("/items/1", "/items/2"):
        message = f"dropped GET {path}: the server closed its connection while the request waited for a handler thread"
        assert message in app.stderr
    assert isinstance(slow.join(), httpx.TransportError)


def test_sigint_inherited_ignored(launch):
    # A server started in the background by a script inherits SIGINT
    # ignored; kill -INT must still stop it gracefully.
    app = launch("handlers.py", sigint_ignored=True)
    assert httpx.get(f"{app.url}/items/1", timeout=10).status_code == 200
    app.send_signal(signal.SIGINT)
    assert app.wait(60) == 0
    assert "INFO gobind: Stopped\n" in app.stderr


def test_signal_refuses_new_connections(handlers_app: AppProcess):
    handlers_app.send_signal(signal.SIGTERM)
    assert handlers_app.wait(60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handlers_app.url}/items/1", timeout=10)


def test_second_sigint_forces_exit(handlers_app: AppProcess):
    request = BackgroundGet(f"{handlers_app.url}/block")
    handlers_app.wait_for_output("block started", stream="stdout")
    handlers_app.send_signal(signal.SIGINT)
    handlers_app.wait_for_output("Shutting down: 1 request in flight")
    handlers_app.send_signal(signal.SIGINT)

    assert handlers_app.wait(60) == 1
    assert "WARNING gobind: Second interrupt: closing all connections now\n" in handlers_app.stderr
    assert "WARNING gobind: Exiting without waiting for 1 handler call and 0 threads still running\n" in handlers_app.stderr
    assert isinstance(request.join(), httpx.TransportError)
    assert "run returned" not in handlers_app.stdout


# fork() and interpreter exit.


@pytest.mark.parametrize("mode", ["imported", "created", "started"])
def test_fork_child_raises(launch, mode):
    app = launch("fork.py", mode, serving=False)
    child = int(app.wait_for_output(r"child pid (\d+)", stream="stdout").group(1))
    try:
        app.wait(60)
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert f"child RuntimeError: {FORK_MESSAGE}\n" in app.stdout
    assert "child exit 3\n" in app.stdout
    assert app.popen.returncode == 0


def test_exit_with_running_server(launch):
    app = launch("exit_running.py", "idle")
    assert app.wait(60) == 0
    assert "script ends" in app.stdout
    assert "Fatal Python error" not in app.stderr


def test_exit_with_daemon_waiters(launch):
    app = launch("exit_running.py", "daemon-wait")
    assert app.wait(60) == 0
    assert "terminate called" not in app.stderr


def test_exit_drains_in_flight_request(launch):
    app = launch("exit_running.py", "in-flight")
    request = BackgroundGet(f"http://{app.address}/slow")
    app.wait_for_output("slow started", stream="stdout")
    app.send_signal(signal.SIGUSR1)

    assert app.wait(60) == 0
    response = request.join()
    assert isinstance(response, httpx.Response), response
    assert response.text == "slow done"
    assert "Fatal Python error" not in app.stderr


def test_exit_with_stuck_handler_skips_finalization(launch):
    # A handler still in Python at exit would take the GIL while the
    # interpreter finalizes, which ends its thread inside Go.
    app = launch("exit_running.py", "stuck")
    request = BackgroundGet(f"http://{app.address}/stuck")
    app.wait_for_output("stuck started", stream="stdout")
    app.send_signal(signal.SIGUSR1)

    assert app.wait(60) == 1
    assert "Exiting without finalizing the interpreter: 1 handler call still running in Python" in app.stderr
    assert "Fatal Python error" not in app.stderr
    assert not isinstance(request.join(), httpx.Response)


# Threads.


def test_thread_local_survives(launch):
    app = launch("handlers.py", "--threads", "1")
    counts: dict[int, list[int]] = {}
    with httpx.Client(base_url=app.url, timeout=30) as client:
        for _ in range(30):
            data = client.get("/thread-local").json()
            counts.setdefault(data["thread"], []).append(data["count"])
    for thread, seen in counts.items():
        assert seen == list(range(1, len(seen) + 1)), f"thread {thread} counts {seen}"
    assert max(len(seen) for seen in counts.values()) > 1


@pytest.mark.skipif(
    not any(importlib.util.find_spec(name) for name in ("_xxsubinterpreters", "_interpreters")),
    reason="this Python has no subinterpreter module",
)
def test_handlers_after_subinterpreter_created(launch):
    # Go threads must take the GIL even though PyGILState_Check() now
    # returns true on them.
    app = launch("handlers.py", "--subinterpreter", "--threads", "4")
    with httpx.Client(base_url=app.url, timeout=30) as client:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda _: client.get("/thread-local"), range(400)))
    assert {response.status_code for response in responses} == {200}
    assert app.popen.poll() is None, app.stderr


# Extra OS threads allowed besides the handler threads: the main thread,
# Go's threads running goroutines (GOMAXPROCS), sysmon and a few idle ones.
THREAD_ALLOWANCE = 16


def test_thread_count_bounded(launch):
    threads = 4
    connections = 512
    app = launch("handlers.py", "--threads", str(threads), "--no-access-log")
    host, _, port = app.address.rpartition(":")
    base_fds = app.fd_count()

    sockets = []
    try:
        for _ in range(connections):
            sock = socket.create_connection((host, int(port)), timeout=60)
            sock.sendall(b"GET /block HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            sockets.append(sock)
        # The server has accepted every connection once it has a descriptor for each.
        for _ in range(3000):
            if app.fd_count() >= base_fds + connections:
                break
            threading.Event().wait(0.01)
        assert app.fd_count() >= base_fds + connections
        app.wait_for_output(rf"(?s)(block started.*){{{threads}}}", stream="stdout")
        peak = max(app.thread_count() for _ in range(50))
        handlers_entered = app.stdout.count("block started")

        app.send_signal(signal.SIGUSR1)
        bodies = []
        for sock in sockets:
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            bodies.append(received.partition(b"\r\n\r\n")[2])
    finally:
        for sock in sockets:
            sock.close()
    assert peak <= threads + THREAD_ALLOWANCE
    assert handlers_entered == threads
    assert bodies == [b"released"] * connections


def test_thousand_concurrent_connections(launch):
    count = 1000
    app = launch("handlers.py", "--no-access-log")
    host, _, port = app.address.rpartition(":")

    async def exchange_all() -> list[bytes]:
        # All connections are open before the first request is sent.
        streams = [await asyncio.open_connection(host, int(port)) for _ in range(count)]
        for i, (_, writer) in enumerate(streams):
            writer.write(f"GET /id/{i} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())

        async def receive(reader, writer) -> bytes:
            data = await reader.read()
            writer.close()
            return data

        return await asyncio.gather(*(receive(reader, writer) for reader, writer in streams))

    responses = asyncio.run(asyncio.wait_for(exchange_all(), 120))
    statuses = [response.partition(b"\r\n")[0] for response in responses]
    bodies = [response.partition(b"\r\n\r\n")[2] for response in responses]
    assert statuses == [b"HTTP/1.1 200 OK"] * count
    assert bodies == [f"id {i}".encode() for i in range(count)]


def test_thousand_concurrent_httpx_requests(launch):
    count = 1000
    app = launch("handlers.py", "--no-access-log")
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)

    async def get_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=app.url, limits=limits, timeout=60) as client:
            return await asyncio.gather(*(client.get(f"/id/{i}") for i in range(count)))

    responses = asyncio.run(asyncio.wait_for(get_all(), 120))
    assert [response.status_code for response in responses] == [200] * count
    assert [response.text for response in responses] == [f"id {i}" for i in range(count)]


# Listeners.


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback interface")
def test_ipv6_loopback(launch):
    app = launch("handlers.py", "--host", "::1")
    assert re.fullmatch(r"\[::1\]:\d+", app.address)
    data = httpx.get(f"{app.url}/attributes", timeout=30).json()
    assert data["local_addr"] == app.address
    assert data["client"][0] == "::1"
    assert data["remote_addr"] == f"[::1]:{data['client'][1]}"


def test_every_interface_reports_the_address_reached(launch):
    # A listener on every IPv4 interface has no local address of its own:
    # each connection reports the one its client reached.
    app = launch("handlers.py", "--host", "0.0.0.0")
    assert re.fullmatch(r"0\.0\.0\.0:\d+", app.address)
    port = app.address.rsplit(":", 1)[1]
    data = httpx.get(f"http://127.0.0.1:{port}/attributes", timeout=30).json()
    assert data["local_addr"] == f"127.0.0.1:{port}"


def test_unix_socket(launch, tmp_path: Path):
    path = tmp_path / "app.sock"
    app = launch("handlers.py", "--uds", str(path))
    assert app.address == f"unix:{path}"
    transport = httpx.HTTPTransport(uds=str(path))
    with httpx.Client(transport=transport, base_url="http://app.test", timeout=30) as client:
        data = client.get("/attributes").json()
    assert data["host"] == "app.test"
    assert data["local_addr"] == str(path)
    assert data["client"] is None


# Logging.


def test_access_log_line(handlers_app: AppProcess):
    response = httpx.get(f"{handlers_app.url}/items/1?x=y", timeout=30)
    port = response.json()["client"][1]
    line = (
        rf'INFO gobind.access: 127\.0\.0\.1:{port} - "GET /items/1\?x=y HTTP/1\.1" 200 {len(response.content)} '
        r"\d+\.\d\dms\n"
    )
    assert re.search(line, handlers_app.stderr)


def test_access_log_head_sends_no_body(handlers_app: AppProcess):
    response = httpx.head(f"{handlers_app.url}/download/1000", timeout=30)
    assert response.status_code == 200
    handlers_app.wait_for_output(r'INFO gobind.access: \S+ - "HEAD /download/1000 HTTP/1\.1" 200 0 ')


def test_access_log_error_status(handlers_app: AppProcess):
    httpx.get(f"{handlers_app.url}/raise", timeout=30)
    assert re.search(r'INFO gobind.access: \S+ - "GET /raise HTTP/1\.1" 500 22 ', handlers_app.stderr)


@pytest.mark.parametrize("method, target, status, size", [("GET", "/missing", 404, 19), ("PATCH", "/items/1", 405, 19)])
def test_access_log_router_response(handlers_app: AppProcess, method, target, status, size):
    response = httpx.request(method, f"{handlers_app.url}{target}", timeout=30)
    assert response.status_code == status
    assert len(response.content) == size
    line = rf'INFO gobind.access: 127\.0\.0\.1:\d+ - "{method} {target} HTTP/1\.1" {status} {size} \d+\.\d\dms\n'
    handlers_app.wait_for_output(line)


def test_access_log_body_ended_early(handlers_app: AppProcess):
    # The client leaves 10 bytes into a 100-byte body: one line without a
    # traceback, and the 400 the server sends in return is logged.
    host, port = handlers_app.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /items/7 HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
    handlers_app.wait_for_output(r"INFO gobind: Client went away during POST /items/7")
    handlers_app.wait_for_output(r'"POST /items/7 HTTP/1\.1" 400 ')
    assert "Traceback" not in handlers_app.stderr


def test_write_timeout_logged_in_one_line(launch):
    # A client that stops reading stalls the handler's writes past the
    # write timeout: routine, so one line without a traceback.
    app = launch("handlers.py", "--write-timeout", "0.5")
    host, port = app.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /download/100000000 HTTP/1.1\r\nHost: test\r\n\r\n")
        app.wait_for_output(r"INFO gobind: Client timed out during GET /download/100000000: ")
    assert "Traceback" not in app.stderr


def test_write_timeout_spares_steady_reader(launch):
    # One 16 MB write to a client that reads 64 KiB every 20 ms (about
    # 3 MB/s) takes longer than the 2 s write timeout, which bounds a stall,
    # not the whole write. A blocked write was measured to wait until about
    # half of the send buffer, a few megabytes, had drained, so a write
    # timeout well below 1 s would cut even this client.
    app = launch("handlers.py", "--write-timeout", "2")
    host, port = app.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        received = read_steadily(sock, b"GET /one-write/16000000 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    head, _, chunked = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    body = b""
    while chunked:
        size, _, rest = chunked.partition(b"\r\n")
        body += rest[: int(size, 16)]
        chunked = rest[int(size, 16) + 2 :]
    assert len(body) == 16_000_000
    assert "timed out" not in app.stderr


def test_invalid_body_logged_in_one_line(handlers_app: AppProcess):
    # Invalid chunked framing is the client's doing: 400 and one INFO line,
    # no traceback.
    request = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    response = half_closed_exchange(handlers_app.address, request)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    handlers_app.wait_for_output(r"INFO gobind: Client sent an invalid body during POST /echo: invalid request body")
    assert "Exception in handler for POST /echo" not in handlers_app.stderr


def test_app_connection_error_is_handler_error(handlers_app: AppProcess):
    # A ConnectionError that the app raises itself, as from a backend that
    # refused it, is an app failure: 500 and a traceback.
    response = httpx.get(f"{handlers_app.url}/backend-refused", timeout=30)
    assert response.status_code == 500
    handlers_app.wait_for_output(r"ERROR gobind: Exception in handler for GET .*/backend-refused")
    assert "ConnectionRefusedError: backend refused the connection" in handlers_app.stderr
    assert "Client went away during GET" not in handlers_app.stderr


def test_app_connection_error_after_body_failure(handlers_app: AppProcess):
    host, port = handlers_app.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /read-fail-then-own HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    handlers_app.wait_for_output(r"ConnectionRefusedError: backend refused after the body read failed")
    assert "Exception in handler for POST" in handlers_app.stderr
    assert "Client went away during POST" not in handlers_app.stderr


def test_app_value_error_after_cut_body(handlers_app: AppProcess):
    # The body ended early, then the app raised a ValueError of its own: an
    # app failure with its traceback, not a client's invalid body.
    request = b"POST /read-fail-then-own?error=value HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello"
    half_closed_exchange(handlers_app.address, request)
    handlers_app.wait_for_output(r"ValueError: the app's own error after the body read failed")
    assert "Exception in handler for POST /read-fail-then-own" in handlers_app.stderr
    assert "Client sent an invalid body" not in handlers_app.stderr


def test_access_log_off(launch):
    app = launch("handlers.py", "--no-access-log")
    assert httpx.get(f"{app.url}/items/1", timeout=30).status_code == 200
    app.send_signal(signal.SIGTERM)
    assert app.wait(60) == 0
    assert "gobind.access" not in app.stderr
    assert "INFO gobind: Stopped\n" in app.stderr


# The module-level API.


def test_module_api_serves(launch):
    app = launch("module_api.py")
    response = httpx.get(f"{app.url}/hello/world", timeout=30)
    assert response.text == "Hello, world"


def test_module_api_shutdown(launch):
    app = launch("module_api.py")
    assert httpx.post(f"{app.url}/shutdown", timeout=30).text == "stopping"
    assert app.wait(60) == 0
    assert "run returned" in app.stdout


def test_module_api_run_waits_for_drain(launch):
    app = launch("module_api.py")
    request = BackgroundGet(f"{app.url}/slow")
    app.wait_for_output("slow started", stream="stdout")
    assert httpx.post(f"{app.url}/shutdown", timeout=30).text == "stopping"

    assert app.wait(60) == 0
    response = request.join()
    assert isinstance(response, httpx.Response), response
    assert response.text == "slow done"
    assert app.stdout.index("slow finished") < app.stdout.index("run returned")


def test_module_api_default_server(launch):
    app = launch("module_api.py")
    assert "default server set: True" in app.stdout
