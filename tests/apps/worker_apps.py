"""Apps for the tests of worker processes: each response names the pid of
the worker that served it."""

import asyncio
import json
import os
import time

import gobind


def wsgi_pid(environ, start_response):
    if environ["PATH_INFO"] == "/environ":
        flags = {key: environ[key] for key in ("wsgi.multiprocess", "wsgi.multithread", "wsgi.run_once")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(flags).encode()]
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ["QUERY_STRING"] or 1.5))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


async def asgi_pid(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(float(scope["query_string"] or 1.5))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


server = gobind.Server(access_log=False)


@server.route("GET /")
def server_pid(w, req):
    w.write(str(os.getpid()))


server_slow = gobind.Server(access_log=False, shutdown_timeout=1)


@server_slow.route("GET /slow")
def slow(w, req):
    time.sleep(float(req.query or 1.5))
    w.write(str(os.getpid()))
