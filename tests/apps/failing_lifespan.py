"""An app whose lifespan startup fails."""

import contextlib

from starlette.applications import Starlette


@contextlib.asynccontextmanager
async def lifespan(app):
    raise RuntimeError("database unreachable")
    yield


app = Starlette(lifespan=lifespan)
