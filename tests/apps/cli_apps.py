"""Objects the CLI tests point APP at."""

import asyncio
import os
import threading
import time

import gobind

value = 42


def make_app():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"made by factory"]

    return app


async def asgi_app(scope, receive, send):
    pass


async def asgi_hello(scope, receive, send):
    body = f"asgi {scope['method']} {scope['path']} {scope['query_string'].decode()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


inside = {"now": 0, "max": 0}


async def asgi_counted(scope, receive, send):
    # Takes 0.2 s and responds with the most requests it saw inside at once.
    if scope["type"] != "http":
        return
    inside["now"] += 1
    inside["max"] = max(inside["max"], inside["now"])
    await asyncio.sleep(0.2)
    inside["now"] -= 1
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(inside["max"]).encode()})


async def asgi_pathsend(scope, receive, send):
    # Sends the file that GOBIND_TEST_FILE names.
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.pathsend", "path": os.environ["GOBIND_TEST_FILE"]})


class WrappedAsgi:
    """An ASGI app whose __call__ is a plain method that returns a
    coroutine, as compiled or wrapped apps are: detected as WSGI."""

    def __call__(self, scope, receive, send):
        return asgi_hello(scope, receive, send)


asgi_wrapped = WrappedAsgi()

server = gobind.Server(access_log=False)


@server.route("GET /native")
def native(w, req):
    w.write(b"native handler")


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def protocol(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['SERVER_PROTOCOL']} {environ['wsgi.url_scheme']}".encode()]


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


async def asgi_echo(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def large(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"x" * (32 << 20)]


def start_lingering_thread():
    # A non-daemon thread that outlives the server, as a synchronous
    # endpoint still running in a thread pool does. (A thread started on a
    # thread of the engine would be a daemon by default.)
    threading.Thread(target=time.sleep, args=(120,), name="lingering", daemon=False).start()


def wsgi_lingering(environ, start_response):
    start_lingering_thread()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"started"]


def wsgi_slow_lingering(environ, start_response):
    # Starts a lingering thread, then responds after 4 s.
    start_lingering_thread()
    time.sleep(4)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"late"]


async def asgi_lingering(scope, receive, send):
    if scope["type"] != "http":
        return
    start_lingering_thread()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"started"})
