"""The request shapes that every server is measured with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

HELLO_BODY = b"helloworld"
BODY_10KB_SIZE = 10 * 1024
BODY_1MB_SIZE = 1024 * 1024

# Application families: each server runs the app of its interface that
# serves the workload's route.
APP_BASIC = "basic"  # /hello, /10k, /1m, /echo, /sleep, /slow
APP_FLASK = "flask"  # Flask app, GET /users/{id}
APP_FASTAPI = "fastapi"  # FastAPI app, GET /users/{id}


@dataclass(frozen=True)
class Workload:
    """One request shape at one number of connections."""

    name: str
    title: str
    method: str
    path: str
    connections: int
    app: str = APP_BASIC
    body_size: int = 0  # request body bytes (POST)
    blocking: bool = False  # the handler waits: sync servers need many threads
    http2: bool = False  # measured with h2load over cleartext, prior knowledge

    def expected_body(self) -> Optional[bytes]:
        """Return the exact response body, or None when it is JSON."""
        if self.app != APP_BASIC:
            return None
        if self.path == "/10k":
            return b"x" * BODY_10KB_SIZE
        if self.path == "/1m":
            return b"x" * BODY_1MB_SIZE
        if self.path == "/echo":
            return request_body(self)
        return HELLO_BODY


def request_body(workload: Workload) -> bytes:
    """Return the request body that the load generator sends."""
    return b"y" * workload.body_size


ALL = [
    Workload("hello-64", "10-byte hello, 64 connections", "GET", "/hello", 64),
    Workload("hello-512", "10-byte hello, 512 connections", "GET", "/hello", 512),
    Workload("get-10k", "10 KB GET, 64 connections", "GET", "/10k", 64),
    Workload("post-10k", "10 KB POST echoed as a stream, 64 connections", "POST", "/echo", 64, body_size=10 * 1024),
    Workload("get-1m", "1 MB response, 64 connections", "GET", "/1m", 64),
    Workload("sleep-512", "handler waits 10 ms, 512 connections", "GET", "/sleep", 512, blocking=True),
    Workload("slow-512", "handler waits 100 ms, 512 connections", "GET", "/slow", 512, blocking=True),
    Workload("flask-64", "Flask JSON with a path parameter, 64 connections", "GET", "/users/42", 64, app=APP_FLASK),
    Workload("fastapi-64", "FastAPI JSON with a path parameter, 64 connections", "GET", "/users/42", 64, app=APP_FASTAPI),
    Workload("h2-hello-64", "HTTP/2 (h2c) 10-byte hello, 64 connections x 10 streams", "GET", "/hello", 64, http2=True),
]

QUICK = ["hello-64", "hello-512", "post-10k", "sleep-512", "flask-64", "fastapi-64", "h2-hello-64"]

# Streams per HTTP/2 connection (h2load -m).
H2_STREAMS = 10

BY_NAME = {workload.name: workload for workload in ALL}
