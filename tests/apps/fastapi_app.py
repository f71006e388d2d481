"""A FastAPI app: typed JSON routes, validation errors, streaming,
background tasks and lifespan state."""

import asyncio
import contextlib
import sys

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

done = []


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"model": "loaded"}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}


@app.get("/state")
async def read_state(request: Request):
    return {"model": request.state.model}


@app.get("/stream")
async def stream():
    async def generate():
        for i in range(3):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(generate(), media_type="text/plain")


@app.post("/notify")
async def notify(tasks: BackgroundTasks, email: str):
    tasks.add_task(done.append, email)
    return {"queued": email}


@app.get("/done")
def read_done():
    return {"done": done}


async def write_report(name: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    print(f"report {name} written", file=sys.stderr, flush=True)


@app.post("/report")
async def report(tasks: BackgroundTasks, name: str, seconds: float):
    tasks.add_task(write_report, name, seconds)
    return {"queued": name}
