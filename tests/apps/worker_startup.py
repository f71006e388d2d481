"""ASGI apps whose workers start in unusual ways.

sidecar_app starts a second server, as an app that serves metrics on its
own port would, and then fails its lifespan startup. slow_app takes
GOBIND_TEST_IMPORT_SECONDS seconds to import."""

import os
import sys
import time

import gobind

if os.environ.get("GOBIND_TEST_SIDECAR"):
    sidecar = gobind.Server(access_log=False)
    sidecar.start("127.0.0.1", 0)

if os.environ.get("GOBIND_TEST_IMPORT_SECONDS"):
    print("importing worker_startup", file=sys.stderr, flush=True)
    time.sleep(float(os.environ["GOBIND_TEST_IMPORT_SECONDS"]))


async def sidecar_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})


async def slow_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"slow to import"})
