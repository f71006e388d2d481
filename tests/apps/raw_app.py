"""A plain ASGI 3 app that exposes what the server gives it, for the tests."""

import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from urllib.parse import unquote

# Facts the tests read back through /facts.
facts = {"inflight": 0, "max_inflight": 0, "send_after_disconnect": None, "stream_end": None, "received": {}}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    route = ROUTES.get(scope["path"].removeprefix(scope["root_path"]))
    if route is None:
        await respond(send, 404, b"not found")
        return
    await route(scope, receive, send)


async def lifespan(scope, receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello from lifespan"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(send, status, body, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


def plain(value):
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


async def scope_route(scope, receive, send):
    await respond(send, 200, json.dumps(plain(dict(scope))).encode(), b"application/json")


async def echo(scope, receive, send):
    chunks = []
    while True:
        message = await receive()
        chunks.append(message["body"])
        if not message["more_body"]:
            break
    headers = [(b"x-chunks", str(len(chunks)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"".join(chunks)})


async def respond_then_read(scope, receive, send):
    # Starts the response after the first body message, then reads the rest.
    message = await receive()
    hasher = hashlib.sha256(message["body"])
    size = len(message["body"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first %d\n" % size, "more_body": True})
    while message["more_body"]:
        message = await receive()
        if message["type"] != "http.request":
            return
        hasher.update(message["body"])
        size += len(message["body"])
    await send({"type": "http.response.body", "body": f"size {size} sha256 {hasher.hexdigest()}\n".encode()})


async def stream_then_read(scope, receive, send):
    # Starts the response before it receives any of the body.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"start\n", "more_body": True})
    hasher = hashlib.sha256()
    size = 0
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] != "http.request":
            return
        hasher.update(message["body"])
        size += len(message["body"])
        more_body = message["more_body"]
    await send({"type": "http.response.body", "body": f"size {size} sha256 {hasher.hexdigest()}\n".encode()})


async def cancelled_receive(scope, receive, send):
    # The first receive() gives up before the slow body arrives; no byte
    # may be lost to it.
    try:
        await asyncio.wait_for(receive(), timeout=0.05)
        first = b""
    except asyncio.TimeoutError:
        first = None
    chunks = [] if first is None else [first]
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await respond(send, 200, str(len(b"".join(chunks))).encode())


async def respond_with_read_pending(scope, receive, send):
    # receive() gives up while the client sends nothing, which leaves the
    # server's read of the body pending while the whole response goes out.
    try:
        await asyncio.wait_for(receive(), timeout=0.05)
    except asyncio.TimeoutError:
        pass
    await respond(send, 200, b"body")


# The Content-Length fields of /lengths, whose body is 5 bytes, by query.
LENGTH_FIELDS = {
    b"same": [(b"content-length", b"5"), (b"Content-Length", b"5")],
    b"signed": [(b"content-length", b"+5")],
    b"short": [(b"content-length", b"8")],
}


async def lengths(scope, receive, send):
    # Without a known query: two different lengths, 5 and 6.
    default = [(b"content-length", b"5"), (b"Content-Length", b"6")]
    headers = LENGTH_FIELDS.get(scope["query_string"], default)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def double_start(scope, receive, send):
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    await send(start)


async def status_route(scope, receive, send):
    # The status is JSON in the query string: 103, true, "200", 200.0.
    await respond(send, json.loads(unquote(scope["query_string"].decode())), b"body")


async def executor_sleep(scope, receive, send):
    # A job of the loop's default executor that outlasts every test.
    await asyncio.get_running_loop().run_in_executor(None, time.sleep, 300)
    await respond(send, 200, b"slept")


async def body_first(scope, receive, send):
    await send({"type": "http.response.body", "body": b"too early"})


async def fail(scope, receive, send):
    raise ValueError("the handler failed")


async def no_response(scope, receive, send):
    return None


async def sleep(scope, receive, send):
    facts["inflight"] += 1
    facts["max_inflight"] = max(facts["max_inflight"], facts["inflight"])
    try:
        await asyncio.sleep(0.1)
    finally:
        facts["inflight"] -= 1
    await respond(send, 200, b"slept")


async def hold(scope, receive, send):
    # Holds its request for 2 s, and prints to stderr when it starts.
    print("hold started", file=sys.stderr, flush=True)
    await asyncio.sleep(2)
    await respond(send, 200, b"held")


async def send_after_disconnect(scope, receive, send):
    while (await receive())["type"] != "http.disconnect":
        pass
    try:
        await respond(send, 200, b"too late")
    except OSError as error:
        # Only an OSError gets here.
        facts["send_after_disconnect"] = type(error).__name__


async def record_events(scope, receive, send):
    # Records the receive() events of the request until the disconnect, under
    # its query string.
    events = facts["received"].setdefault(scope["query_string"].decode(), [])
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            events.append("disconnect")
            return
        events.append([message["body"].decode(), message["more_body"]])


async def stream_forever(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    try:
        while True:
            await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
            await asyncio.sleep(0.001)
    except OSError:
        facts["stream_end"] = "OSError"


async def stream_until_failure(scope, receive, send):
    # Unlike /stream-forever, lets the error of a failed send() escape.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:
        await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})


async def pathsend(scope, receive, send):
    # The query picks the path: ?missing, ?directory (this one) or ?fifo (no
    # writer). ?declared declares a Content-Length of 10 bytes.
    directory = os.path.dirname(os.path.abspath(__file__))
    query = scope["query_string"]
    path = os.path.join(directory, {b"missing": "no-such-file", b"directory": ""}.get(query, "raw_app.py"))
    headers = [(b"content-type", b"text/x-python")]
    if query == b"fifo":
        path = os.path.join(tempfile.mkdtemp(), "fifo")
        os.mkfifo(path)
    elif query == b"declared":
        headers.append((b"content-length", b"10"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": path})


async def trailers(scope, receive, send):
    headers = [(b"content-type", b"text/plain"), (b"trailer", b"x-checksum")]
    await send({"type": "http.response.start", "status": 200, "headers": headers, "trailers": True})
    await send({"type": "http.response.body", "body": b"payload", "more_body": False})
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")], "more_trailers": False})


async def block_loop(scope, receive, send):
    # Blocks the event loop, as a sync call in an async handler does. A
    # second SIGTERM must still end the process.
    time.sleep(60)
    await respond(send, 200, b"woke")


async def facts_route(scope, receive, send):
    await respond(send, 200, json.dumps(facts).encode(), b"application/json")


ROUTES = {
    "/executor-sleep": executor_sleep,
    "/status": status_route,
    "/scope": scope_route,
    "/scope/caf\u00e9 x": scope_route,
    "/echo": echo,
    "/respond-then-read": respond_then_read,
    "/stream-then-read": stream_then_read,
    "/cancelled-receive": cancelled_receive,
    "/respond-with-read-pending": respond_with_read_pending,
    "/lengths": lengths,
    "/double-start": double_start,
    "/body-first": body_first,
    "/fail": fail,
    "/no-response": no_response,
    "/sleep": sleep,
    "/hold": hold,
    "/send-after-disconnect": send_after_disconnect,
    "/record-events": record_events,
    "/stream-forever": stream_forever,
    "/stream-until-failure": stream_until_failure,
    "/pathsend": pathsend,
    "/trailers": trailers,
    "/facts": facts_route,
    "/block-loop": block_loop,
}
