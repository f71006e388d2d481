"""An ASGI app without lifespan support: it raises for other scope types."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("plain_app handles only http")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"plain"})
