"""The Python module on top of the C++ layer that C++ programs use: the
request fields, body and error paths that both share."""

import logging

import httpx
import pytest

import gobind


@pytest.fixture
def server():
    app = gobind.Server()

    @app.route("GET /items/{id}")
    def item(w, req):
        w.headers["Content-Type"] = "text/plain"
        w.write(f"{req.path_params['id']}|{req.query}|{req.headers['X-Tag']}")

    @app.route("POST /echo")
    def echo(w, req):
        w.write(req.read())

    @app.route("GET /boom")
    def boom(w, req):
        raise ValueError("boom")

    app.start("127.0.0.1", 0)
    yield app
    app.shutdown(5)


def test_request_fields(server):
    response = httpx.get(f"{server.url}/items/a%2Fb?x=1", headers={"X-Tag": "t"})
    assert response.status_code == 200
    assert response.text == "a/b|x=1|t"


def test_echo_large_body(server):
    payload = bytes(range(256)) * 8192
    response = httpx.post(f"{server.url}/echo", content=payload)
    assert response.status_code == 200
    assert response.content == payload


def test_handler_exception_is_500(server, caplog):
    with caplog.at_level(logging.ERROR, logger="gobind"):
        response = httpx.get(f"{server.url}/boom")
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert [record.getMessage() for record in caplog.records] == ["Exception in handler for GET /boom"]
