"""The benchmark routes as a bare ASGI 3 application."""

import asyncio

from .payloads import BODY_1MB, BODY_10KB, HELLO, SLEEP_SECONDS, SLOW_SECONDS


async def _fixed(send, content_type, body):
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _echo(receive, send):
    # Sends each body chunk back as soon as it arrives.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]})
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
        chunk = message.get("body", b"")
        if chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    method = scope["method"]
    path = scope["path"]
    if method == "GET" and path == "/hello":
        await _fixed(send, b"text/plain", HELLO)
    elif method == "GET" and path == "/10k":
        await _fixed(send, b"application/octet-stream", BODY_10KB)
    elif method == "GET" and path == "/1m":
        await _fixed(send, b"application/octet-stream", BODY_1MB)
    elif method == "POST" and path == "/echo":
        await _echo(receive, send)
    elif method == "GET" and path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        await _fixed(send, b"text/plain", HELLO)
    elif method == "GET" and path == "/slow":
        await asyncio.sleep(SLOW_SECONDS)
        await _fixed(send, b"text/plain", HELLO)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"not found"})
