"""Real Starlette and FastAPI apps served by gobind.asgi, unchanged."""

import signal
import socket
import time

import httpx
import pytest

from asgi_server import AsgiProcess


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def starlette_server(request):
    process = AsgiProcess("starlette_app:app", "--loop", request.param)
    assert process.url is not None, process.text
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def fastapi_server():
    process = AsgiProcess("fastapi_app:app")
    assert process.url is not None, process.text
    yield process
    assert process.stop() == 0


def test_starlette_json(starlette_server):
    response = httpx.get(starlette_server.url + "/items/42?q=go")
    assert response.status_code == 200
    assert response.json() == {"id": 42, "q": "go"}


def test_starlette_not_found(starlette_server):
    response = httpx.get(starlette_server.url + "/items/abc")
    assert response.status_code == 404


def test_starlette_lifespan_state(starlette_server):
    response = httpx.get(starlette_server.url + "/state")
    assert response.json() == {"db": "connected"}


def test_starlette_streaming(starlette_server):
    with httpx.stream("GET", starlette_server.url + "/numbers") as response:
        lines = list(response.iter_lines())
        assert response.headers["transfer-encoding"] == "chunked"
    assert lines == ["0", "1", "2", "3", "4"]


def test_starlette_sse(starlette_server):
    with httpx.stream("GET", starlette_server.url + "/sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    assert events == ["data: 0", "data: 1", "data: 2"]


def test_starlette_upload_streamed(starlette_server):
    def chunks():
        for _ in range(32):
            yield b"z" * 32768

    response = httpx.post(starlette_server.url + "/upload", content=chunks())
    assert response.json()["size"] == 32 * 32768
    assert response.json()["chunks"] > 1


def test_starlette_upload_small(starlette_server):
    response = httpx.post(starlette_server.url + "/upload", content=b"abc")
    assert response.json() == {"size": 3, "chunks": 1}


def read_events(server):
    return httpx.get(server.url + "/events").json()


def test_starlette_background_task(starlette_server):
    response = httpx.get(starlette_server.url + "/background?tag=first")
    assert response.text == "accepted"
    for _ in range(100):
        if "first" in read_events(starlette_server)["background"]:
            break
        time.sleep(0.02)
    assert "first" in read_events(starlette_server)["background"]


def disconnect_mid_stream(server, path):
    before = read_events(server)["disconnected"]
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.1)
    for _ in range(200):
        if read_events(server)["disconnected"] > before:
            break
        time.sleep(0.02)
    return read_events(server)["disconnected"] - before


def test_starlette_disconnect_mid_stream(starlette_server):
    assert disconnect_mid_stream(starlette_server, "/endless") == 1
    time.sleep(0.2)  # the app's task ends after its generator
    # Starlette raises its own ClientDisconnect from gobind's: a debug line, not an error.
    assert "Exception in ASGI application" not in starlette_server.text


def test_starlette_is_disconnected(starlette_server):
    assert disconnect_mid_stream(starlette_server, "/watch") == 1


def test_fastapi_path_and_query(fastapi_server):
    response = httpx.get(fastapi_server.url + "/items/7?q=x")
    assert response.json() == {"item_id": 7, "q": "x"}


def test_fastapi_validation_error(fastapi_server):
    response = httpx.get(fastapi_server.url + "/items/seven")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_fastapi_post_json(fastapi_server):
    response = httpx.post(fastapi_server.url + "/items", json={"name": "pen", "price": 2.5})
    assert response.json() == {"name": "pen", "price_with_tax": 3.0}


def test_fastapi_lifespan_state(fastapi_server):
    assert httpx.get(fastapi_server.url + "/state").json() == {"model": "loaded"}


def test_fastapi_streaming(fastapi_server):
    response = httpx.get(fastapi_server.url + "/stream")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"


def test_fastapi_background_task(fastapi_server):
    response = httpx.post(fastapi_server.url + "/notify?email=a@example.com")
    assert response.json() == {"queued": "a@example.com"}
    for _ in range(100):
        if httpx.get(fastapi_server.url + "/done").json()["done"]:
            break
        time.sleep(0.02)
    assert httpx.get(fastapi_server.url + "/done").json() == {"done": ["a@example.com"]}


def stop_during_report(seconds):
    """Queue a background task that takes seconds, stop the server at
    once with SIGTERM, and return the stopped process."""
    process = AsgiProcess("fastapi_app:app")
    response = httpx.post(process.url + f"/report?name=q&seconds={seconds}")
    assert response.json() == {"queued": "q"}
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0
    assert "Traceback" not in process.text
    return process


def test_shutdown_waits_for_background_task():
    # The task runs after the response; a graceful shutdown lets it finish.
    process = stop_during_report(1)
    assert "Waiting for 1 application task that went on after its response" in process.text
    assert "report q written" in process.text


def test_shutdown_timeout_cancels_background_task():
    process = stop_during_report(60)
    assert "Graceful shutdown timed out after 5.0 s; cancelling 1 application task" in process.text
    assert "POST /report cancelled by the shutdown" in process.text
    assert "report q written" not in process.text


def test_fastapi_openapi(fastapi_server):
    response = httpx.get(fastapi_server.url + "/openapi.json")
    assert response.json()["paths"]["/items"]["post"]["requestBody"]["required"] is True
