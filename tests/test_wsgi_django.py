"""A real Django project (tests/apps/djangoproj) served by the gobind command."""

import hashlib

import httpx
import pytest

from cliserver import start


@pytest.fixture(scope="module")
def django_server():
    server = start("djangoproj.wsgi:application", "--threads", "2", "--no-access-log")
    yield server
    server.stop()


def test_django_hello(django_server):
    response = httpx.get(django_server.url + "/hello/")
    assert (response.status_code, response.text) == (200, "Hello from Django")


def test_django_append_slash_redirect(django_server):
    response = httpx.get(django_server.url + "/hello")
    assert (response.status_code, response.headers["location"]) == (301, "/hello/")


def test_django_echo(django_server):
    response = httpx.post(django_server.url + "/echo/?a=1", content=b"payload", headers={"Content-Type": "text/plain"})
    assert response.json() == {"method": "POST", "body": "payload", "query": {"a": "1"}}


def test_django_upload(django_server):
    document = b"line\n" * 50_000
    response = httpx.post(django_server.url + "/upload/", files={"document": ("notes.txt", document, "text/plain")})
    assert response.json() == {"name": "notes.txt", "sha256": hashlib.sha256(document).hexdigest()}


def test_django_stream(django_server):
    with httpx.stream("GET", django_server.url + "/stream/") as response:
        lines = list(response.iter_lines())
    assert lines == ["part 0", "part 1", "part 2"]


def test_django_cookie(django_server):
    with httpx.Client(base_url=django_server.url) as client:
        first = client.get("/cookie/")
        second = client.get("/cookie/")
    assert (first.text, second.text) == ("none", "abc123")


def test_django_not_found(django_server):
    assert httpx.get(django_server.url + "/nowhere/").status_code == 404


@pytest.fixture(scope="module")
def mounted_django():
    server = start("djangoproj.wsgi:application", "--root-path", "/site", "--no-access-log")
    yield server
    server.stop()


def test_django_root_path(mounted_django):
    host = mounted_django.url.removeprefix("http://")
    data = httpx.get(mounted_django.url + "/site/meta/?x=1").json()
    assert data == {
        "path": "/site/meta/",
        "path_info": "/meta/",
        "script_name": "/site",
        "host": host,
        "absolute": mounted_django.url + "/site/meta/?x=1",
    }
