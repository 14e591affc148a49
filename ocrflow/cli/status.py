"""`ocrflow status`: what a running ocrflow is doing, for a terminal (the dashboard's overview)."""

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

from ocrflow.cli.config import load_settings

OK, REFUSED, UNREACHABLE = 0, 2, 3
STALE = 25.0  # seconds without a beat before a worker counts as gone (as on the dashboard)


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings("status")
    if settings is None:
        return REFUSED
    key = args.api_key or settings.api_key
    try:
        status, body = asyncio.run(_overview(args.server.rstrip("/"), key))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"ocrflow status: cannot reach {args.server}: {exc}", file=sys.stderr)
        return UNREACHABLE
    if status != 200:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        said = f"{error.get('code', status)}: {error.get('message', '')}".rstrip(": ")
        print(f"ocrflow status: {args.server} answered {status} ({said})", file=sys.stderr)
        return REFUSED if status in (401, 403) else UNREACHABLE
    print(json.dumps(body, indent=1) if args.json else describe(body))
    return OK


async def _overview(base: str, key: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/v1/admin/overview", headers=headers) as response,
    ):
        try:
            return response.status, await response.json(content_type=None)
        except ValueError:
            return response.status, None


def describe(overview: dict[str, Any]) -> str:
    """The overview as a few lines of text: workers, queue, counts, the last five minutes."""
    now = overview.get("now") or time.time()
    lines = []
    workers = overview["workers"]
    alive = [w for w in workers if now - w["seen"] < STALE]
    lines.append(
        f"workers: {len(alive)} alive"
        + (f", {len(workers) - len(alive)} silent" if len(alive) < len(workers) else "")
    )
    for worker in sorted(workers, key=lambda w: str(w.get("name"))):
        name = worker.get("name") or f"{worker['host']}:{worker['pid']}"
        state = "alive" if now - worker["seen"] < STALE else "silent"
        running = " ".join(worker.get("jobs", [])) or "-"
        lines.append(
            f"  {name}  {state}  {worker['pool_processes']} processes  "
            f"running {worker['running']}: {running}  heard {now - worker['seen']:.0f} s ago"
        )
    queue = overview["queue"]
    oldest = overview.get("oldest_waiting_seconds")
    lines.append(
        f"queue: {queue['high']} high, {queue['normal']} normal, {queue['low']} low waiting; "
        f"{overview['running']} running; oldest wait "
        + (f"{oldest:.0f} s" if oldest is not None else "-")
    )
    jobs = overview["jobs"]
    counts = ", ".join(
        f"{jobs.get(state, 0)} {state}"
        for state in ("accepted", "succeeded", "failed", "cancelled")
    )
    checks = overview.get("checks") or {}
    verdicts = f"; checks {checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed"
    lines.append(f"jobs since the counters began: {counts}" + (verdicts if checks else ""))
    recent = overview.get("throughput", [])[-5:]
    ended = sum(m.get(s, 0) for m in recent for s in ("succeeded", "failed", "cancelled"))
    failed = sum(m.get("failed", 0) for m in recent)
    failed_checks = sum(m.get("checks_failed", 0) for m in recent)
    pages = sum(m.get("pages", 0) for m in recent)
    minutes = max(1, len(recent))
    lines.append(
        f"last {minutes} min: {ended / minutes:.1f} jobs/min ({failed} failed), "
        f"{pages / minutes:.1f} pages/min"
        + (f"; {failed_checks} failed their checks" if failed_checks else "")
    )
    return "\n".join(lines)
