"""Apps whose lifespan startup or shutdown blocks the event loop, as a sync
call in an async function does."""

import time


def make_app(blocking_step):
    async def app(scope, receive, send):
        if scope["type"] != "lifespan":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        while True:
            message = await receive()
            step = message["type"].removeprefix("lifespan.")
            if step == blocking_step:
                time.sleep(60)
            await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return

    return app


blocked_startup = make_app("startup")
blocked_shutdown = make_app("shutdown")
