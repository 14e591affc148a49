"""Background loops that must not die (the event listener, the reaper, the sweeper, the
heartbeat): each runs supervised, logged and restarted with backoff after any exception, and
its health is there for `/v1/status` to show."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

FIRST_DELAY, MOST_DELAY = 0.5, 30.0
STEADY = 60.0  # a loop that ran this long before failing starts its backoff afresh


@dataclass
class Health:
    state: str = "starting"  # running | restarting | stopped
    restarts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None  # seconds since the epoch

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Supervised:
    """Runs `body` (a loop meant to run for ever) as a task; if it raises or returns, logs why
    and runs it again after a delay that doubles with each quick failure."""

    def __init__(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        self.name, self._body = name, body
        self.health = Health()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "Supervised":
        self._task = asyncio.create_task(self._supervise(), name=self.name)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.health.state = "stopped"

    async def _supervise(self) -> None:
        delay = FIRST_DELAY
        while True:
            started = time.monotonic()
            self.health.state = "running"
            try:
                await self._body()
                problem = "it returned"
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
                log.exception("%s failed; restarting it in %.1f s", self.name, delay)
            else:
                log.error("%s stopped (%s); restarting it in %.1f s", self.name, problem, delay)
            if time.monotonic() - started > STEADY:
                delay = FIRST_DELAY
            self.health = Health("restarting", self.health.restarts + 1, problem, time.time())
            await asyncio.sleep(delay)
            delay = min(delay * 2, MOST_DELAY)


def health_of(tasks: "dict[str, Supervised]") -> dict[str, dict[str, Any]]:
    return {name: task.health.as_dict() for name, task in tasks.items()}
