"""Handlers that fail in each way a plug-in can: by raising, by running too long (past their own
timeout, or past what is left of the job's), and by taking more memory than a handler may. Each
writes an output first, which must not be kept."""

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from ocrflow.handlers import Context, Document, Handler


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = 60.0


async def _raises(document: Document, params: Params, context: Context) -> dict[str, Any]:
    context.write("partial.txt", "half done")
    await context.progress("about to fail")
    raise ValueError(f"{document.filename} is not what this handler expected")


async def _sleeps(document: Document, params: Params, context: Context) -> dict[str, Any]:
    context.write("partial.txt", "half done")
    await asyncio.sleep(params.seconds)
    return {"slept": params.seconds}


async def _hoards(document: Document, params: Params, context: Context) -> dict[str, Any]:
    context.write("partial.txt", "half done")
    hoard = [bytearray(64 * 1024 * 1024) for _ in range(1024)]  # 64 GiB, a block at a time
    return {"blocks": len(hoard)}


raises = Handler(name="raises", run=_raises, params=Params)
sleeps = Handler(name="sleeps", run=_sleeps, params=Params, timeout=2.0)
hoards = Handler(name="hoards", run=_hoards, params=Params)
lingers = Handler(name="lingers", run=_sleeps, params=Params)  # no timeout of its own
