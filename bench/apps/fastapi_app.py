"""A small FastAPI application: JSON responses and a path parameter."""

from fastapi import FastAPI

from .payloads import user

app = FastAPI()


@app.get("/users/{user_id}")
async def get_user(user_id: int) -> dict:
    return user(user_id)
