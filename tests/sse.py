"""A small server-sent events reader for tests and load scripts."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Received:
    id: str | None
    kind: str
    data: dict[str, Any]


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[Received]:
    """Yield each event of an open text/event-stream response; comments (pings) are skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Received(
                    fields.get("id"), fields.get("event", "message"), json.loads("\n".join(data))
                )
            fields, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
