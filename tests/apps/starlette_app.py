"""A Starlette app exercising JSON, streaming, SSE, body streaming,
background tasks, lifespan state and disconnects."""

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

events = {"background": [], "disconnected": 0, "shutdown": False}


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"db": "connected"}
    events["shutdown"] = True


async def items(request: Request):
    return JSONResponse({"id": int(request.path_params["item_id"]), "q": request.query_params.get("q")})


async def state(request: Request):
    return JSONResponse({"db": request.state.db})


async def numbers(request: Request):
    async def generate():
        for i in range(5):
            yield f"{i}\n"
            await asyncio.sleep(0)

    return StreamingResponse(generate(), media_type="text/plain")


async def sse(request: Request):
    async def generate():
        for i in range(3):
            yield f"event: tick\ndata: {i}\n\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(generate(), media_type="text/event-stream")


async def upload(request: Request):
    size = 0
    chunks = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks += 1 if chunk else 0
    return JSONResponse({"size": size, "chunks": chunks})


async def background(request: Request):
    task = BackgroundTask(events["background"].append, request.query_params["tag"])
    return PlainTextResponse("accepted", background=task)


async def endless(request: Request):
    async def generate():
        try:
            while True:
                yield "data: tick\n\n"
                await asyncio.sleep(0.01)
        finally:
            events["disconnected"] += 1

    return StreamingResponse(generate(), media_type="text/event-stream")


async def watch(request: Request):
    while not await request.is_disconnected():
        await asyncio.sleep(0.01)
    events["disconnected"] += 1
    return PlainTextResponse("gone")


async def report(request: Request):
    return JSONResponse(events)


app = Starlette(
    routes=[
        Route("/items/{item_id:int}", items),
        Route("/state", state),
        Route("/numbers", numbers),
        Route("/sse", sse),
        Route("/upload", upload, methods=["POST"]),
        Route("/background", background),
        Route("/endless", endless),
        Route("/watch", watch),
        Route("/events", report),
    ],
    lifespan=lifespan,
)
