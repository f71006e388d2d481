"""gobind.asgi.serve(): lifespan modes, startup failure, listeners and shutdown."""

import re
import signal
import socket
import time

import pytest

import httpx

from asgi_server import AsgiProcess


def test_startup_failure_exits_3():
    process = AsgiProcess("failing_lifespan:app")
    assert process.wait() == 3
    assert "Application startup failed. Exiting." in process.text
    assert "RuntimeError: database unreachable" in process.text


def test_startup_failure_does_not_bind():
    process = AsgiProcess("failing_lifespan:app")
    process.wait()
    assert process.url is None


def test_lifespan_off_skips_startup():
    process = AsgiProcess("failing_lifespan:app", "--lifespan", "off")
    try:
        assert process.url is not None, process.text
        assert httpx.get(process.url + "/").status_code == 404
    finally:
        assert process.stop() == 0


def test_lifespan_auto_unsupported_app():
    process = AsgiProcess("plain_app:app")
    try:
        assert "ASGI 'lifespan' protocol appears unsupported." in process.text
        assert httpx.get(process.url + "/").text == "plain"
    finally:
        assert process.stop() == 0


def test_lifespan_on_unsupported_app_exits_3():
    process = AsgiProcess("plain_app:app", "--lifespan", "on")
    assert process.wait() == 3
    assert "Application startup failed. Exiting." in process.text
    assert "ValueError: plain_app handles only http" in process.text


def test_shutdown_runs_lifespan_shutdown():
    process = AsgiProcess("raw_app:app")
    assert process.stop() == 0
    assert "Application shutdown complete." in process.text


def test_root_path_in_scope():
    process = AsgiProcess("raw_app:app", "--root-path", "/api")
    try:
        scope = httpx.get(process.url + "/scope").json()
        assert scope["root_path"] == "/api"
        assert scope["path"] == "/api/scope"
        assert scope["raw_path"] == {"bytes": "/api/scope"}
    finally:
        assert process.stop() == 0


def test_unix_socket_scope(tmp_path):
    path = str(tmp_path / "asgi.sock")
    process = AsgiProcess("raw_app:app", "--uds", path)
    try:
        assert process.url == f"unix:{path}"
        client = httpx.Client(transport=httpx.HTTPTransport(uds=path))
        scope = client.get("http://localhost/scope").json()
        assert scope["client"] is None
        assert scope["server"] == [path, None]
    finally:
        assert process.stop() == 0


def test_port_in_use_fails():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = AsgiProcess("raw_app:app", "--port", str(port))
        assert process.wait() == 1
    assert "address already in use" in process.text
    assert "Application shutdown complete." in process.text


def test_is_asgi_app():
    import gobind.asgi

    async def coroutine_app(scope, receive, send):
        pass

    class AppClass:
        async def __call__(self, scope, receive, send):
            pass

    def wsgi_app(environ, start_response):
        pass

    assert gobind.asgi.is_asgi_app(coroutine_app)
    assert gobind.asgi.is_asgi_app(AppClass)
    assert gobind.asgi.is_asgi_app(AppClass())
    assert not gobind.asgi.is_asgi_app(wsgi_app)


def test_shutdown_cuts_endless_stream():
    process = AsgiProcess("raw_app:app")
    host, port = process.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert len(sock.recv(65536)) > 0
        process.process.send_signal(signal.SIGTERM)
        assert process.wait() == 0
    assert "Shutting down: 1 request in flight, 1 connection open" in process.text
    assert "Graceful shutdown timed out after 5.0 s; closed the remaining connections" in process.text


def send_signals(process, *signums):
    for signum in signums:
        process.process.send_signal(signum)
        time.sleep(0.2)


@pytest.mark.parametrize("path", ["/block-loop", "/stream-forever"])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_second_signal_ends_request(loop, path):
    process = AsgiProcess("raw_app:app", "--loop", loop)
    host, port = process.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)  # the app is now inside its endless wait or stream
        send_signals(process, signal.SIGTERM, signal.SIGINT)
        assert process.wait() == 1
        sock.settimeout(10)
        while sock.recv(65536):
            pass  # the stream's bytes, then the close
    assert "WARNING gobind: Second interrupt: closing all connections now" in process.text
    assert "Traceback" not in process.text
    assert "Task was destroyed" not in process.text


def start_executor_job(process):
    """Open a connection whose request sleeps in the loop's executor, and
    return it once the job runs."""
    host, port = process.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"GET /executor-sleep HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)  # the job now sleeps in an executor thread
    return sock


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_executor_wait_logged(loop):
    process = AsgiProcess("raw_app:app", "--loop", loop)
    with start_executor_job(process):
        process.process.send_signal(signal.SIGTERM)
        # The graceful shutdown gives up on the request after 5 s, then
        # waits for the job.
        assert process.logs("Waiting for the jobs of the event loop's executor (run_in_executor) to end")
        process.process.send_signal(signal.SIGINT)
        assert process.wait() == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_second_signal_leaves_executor_job(loop):
    process = AsgiProcess("raw_app:app", "--loop", loop)
    with start_executor_job(process):
        send_signals(process, signal.SIGTERM, signal.SIGINT)
        assert process.wait() == 1
    # The executor's idle threads count as well.
    assert re.search(r"Exiting without waiting for 0 handler calls and \d+ threads? still running", process.text)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_second_signal_during_blocked_startup(loop):
    process = AsgiProcess("blocking_lifespan:blocked_startup", "--loop", loop, wait_until_serving=False)
    assert process.logs("Waiting for application startup.")
    send_signals(process, signal.SIGTERM, signal.SIGTERM)
    assert process.wait() == 1
    assert process.url is None
    assert "Traceback" not in process.text


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_second_signal_during_blocked_shutdown(loop):
    process = AsgiProcess("blocking_lifespan:blocked_shutdown", "--loop", loop)
    send_signals(process, signal.SIGTERM)
    assert process.logs("Waiting for application shutdown.")
    send_signals(process, signal.SIGTERM)
    assert process.wait() == 1
    assert "Traceback" not in process.text
    assert "Application shutdown complete." not in process.text
