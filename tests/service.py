"""Helpers for tests and scripts that talk to a running ocrflow over HTTP."""

import asyncio

import aiohttp


async def wait_healthy(session: aiohttp.ClientSession, base: str, timeout: float = 60) -> None:
    """Wait until the ingress at `base` answers /healthz."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
