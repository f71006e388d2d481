"""The benchmark routes as a granian RSGI application."""

import asyncio

from .payloads import BODY_1MB, BODY_10KB, HELLO, SLEEP_SECONDS, SLOW_SECONDS

_TEXT = [("content-type", "text/plain")]
_OCTETS = [("content-type", "application/octet-stream")]


async def _echo(protocol):
    transport = protocol.response_stream(200, _OCTETS)
    async for chunk in protocol:
        await transport.send_bytes(chunk)


async def app(scope, protocol):
    method = scope.method
    path = scope.path
    if method == "GET" and path == "/hello":
        protocol.response_bytes(200, _TEXT, HELLO)
    elif method == "GET" and path == "/10k":
        protocol.response_bytes(200, _OCTETS, BODY_10KB)
    elif method == "GET" and path == "/1m":
        protocol.response_bytes(200, _OCTETS, BODY_1MB)
    elif method == "POST" and path == "/echo":
        await _echo(protocol)
    elif method == "GET" and path == "/sleep":
        await asyncio.sleep(SLEEP_SECONDS)
        protocol.response_bytes(200, _TEXT, HELLO)
    elif method == "GET" and path == "/slow":
        await asyncio.sleep(SLOW_SECONDS)
        protocol.response_bytes(200, _TEXT, HELLO)
    else:
        protocol.response_bytes(404, _TEXT, b"not found")
