"""A real Flask app (tests/apps/flask_app.py) served by the gobind command."""

import hashlib

import httpx
import pytest

from cliserver import start
from conftest import half_closed_exchange


@pytest.fixture(scope="module")
def flask_server():
    server = start("flask_app:app", "--threads", "2")
    yield server
    server.stop()


def test_flask_hello(flask_server):
    response = httpx.get(flask_server.url + "/")
    assert (response.status_code, response.text) == (200, "Hello from Flask")


def test_flask_stream(flask_server):
    with httpx.stream("GET", flask_server.url + "/stream") as response:
        chunks = list(response.iter_lines())
    assert chunks == ["chunk 0", "chunk 1", "chunk 2"]
    assert response.headers["transfer-encoding"] == "chunked"


def test_flask_upload(flask_server):
    document = bytes(range(256)) * 2000
    response = httpx.post(
        flask_server.url + "/upload",
        files={"document": ("report.bin", document, "application/octet-stream")},
        data={"title": "Report"},
    )
    assert response.json() == {
        "files": {"document": {"filename": "report.bin", "sha256": hashlib.sha256(document).hexdigest()}},
        "form": {"title": "Report"},
    }


def test_flask_cut_body_is_400(flask_server):
    # Werkzeug turns the failed read of a body shorter than its
    # Content-Length into 400 Bad Request, with no traceback in the log.
    address = flask_server.url.removeprefix("http://")
    request = b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"
    response = half_closed_exchange(address, request)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response
    assert flask_server.wait_output('"POST /data HTTP/1.1" 400')
    assert "Exception on /data" not in flask_server.output


def test_flask_json(flask_server):
    response = httpx.post(flask_server.url + "/json", json={"a": [1, 2]})
    assert response.json() == {"received": {"a": [1, 2]}}


def test_flask_cookies(flask_server):
    with httpx.Client(base_url=flask_server.url) as client:
        set_response = client.get("/cookie/set")
        get_response = client.get("/cookie/get")
    assert "HttpOnly" in set_response.headers["set-cookie"]
    assert get_response.text == "oatmeal"


def test_flask_redirect(flask_server):
    response = httpx.get(flask_server.url + "/redirect")
    assert (response.status_code, response.headers["location"]) == (302, "/")


def test_flask_error_is_500(flask_server):
    response = httpx.get(flask_server.url + "/error")
    assert response.status_code == 500


def test_flask_error_logged(flask_server):
    httpx.get(flask_server.url + "/error")
    assert flask_server.wait_output("RuntimeError: deliberate failure in a Flask view")


def test_flask_not_found(flask_server):
    assert httpx.get(flask_server.url + "/missing").status_code == 404


def test_flask_url(flask_server):
    data = httpx.get(flask_server.url + "/url?q=1").json()
    assert data == {"url": flask_server.url + "/url?q=1", "path": "/url", "script_root": "", "remote": "127.0.0.1"}


def test_flask_access_log(flask_server):
    httpx.get(flask_server.url + "/?logged=1")
    assert flask_server.wait_output('"GET /?logged=1 HTTP/1.1" 200 16')


@pytest.fixture(scope="module")
def mounted_flask():
    server = start("flask_app:app", "--root-path", "/site", "--no-access-log")
    yield server
    server.stop()


def test_flask_root_path(mounted_flask):
    data = httpx.get(mounted_flask.url + "/site/url").json()
    assert (data["script_root"], data["path"], data["url"]) == ("/site", "/url", mounted_flask.url + "/site/url")


def test_flask_root_path_redirect(mounted_flask):
    assert httpx.get(mounted_flask.url + "/site/redirect").headers["location"] == "/site/"
