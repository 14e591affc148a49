"""`ocrflow up` as a user runs it: a real process tree that serves a job, then leaves nothing."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from ocrflow.runtime.redis_server import free_port
from tests.support import TERMINAL, wait_healthy, write_png


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("OCRFLOW_")}
    env.update(OCRFLOW_PORT=str(port), OCRFLOW_POOL_PROCESSES="1")
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ocrflow", "up"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait()
    log.close()


async def run_one_job(session: aiohttp.ClientSession, base: str, png: Path) -> dict[str, object]:
    data = aiohttp.FormData()
    data.add_field("file", png.read_bytes(), filename=png.name)
    async with session.post(f"{base}/v1/jobs", data=data) as response:
        assert response.status == 202
        location = response.headers["Location"]
    async with asyncio.timeout(60):
        while True:
            async with session.get(location) as response:
                job: dict[str, object] = await response.json()
            if job["state"] in TERMINAL:
                return job
            await asyncio.sleep(0.1)


def descendants(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(process.pid).children(recursive=True)


async def test_up_serves_a_job_and_stops_cleanly(
    up: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    process, base = up
    png = write_png(tmp_path / "page.png", ["Served by ocrflow up"])
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
        job = await run_one_job(session, base, png)
        assert job["state"] == "succeeded", job
        async with session.get(f"{base}/v1/jobs/{job['id']}/outputs/text") as response:
            assert (await response.text()).split() == ["Served", "by", "ocrflow", "up"]
    family = descendants(process)
    commands = [" ".join(child.cmdline()) for child in family]
    assert any("redis-server" in command for command in commands), commands
    assert (tmp_path / "data" / "redis" / "redis.sock").exists()

    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 40) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == []


async def test_a_second_up_in_the_same_place_refuses_and_harms_nothing(
    up: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    """A second `scripts/run` in the same checkout once started a second redis-server on the
    first one's socket and append-only file, died with a traceback, and removed the first
    one's socket on its way out."""
    _, base = up
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
        async with asyncio.timeout(10):  # the line comes once the service answers
            while f"ocrflow is ready at {base}/" not in (tmp_path / "up.log").read_text():
                await asyncio.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ocrflow", "up", "--port", str(free_port())],
            cwd=tmp_path,
            env={k: v for k, v in env.items() if k != "REDIS_URL"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 2
        (line,) = second.stderr.splitlines()
        assert line.startswith("ocrflow up: ocrflow is already running on ")
        assert (tmp_path / "data" / "redis" / "redis.sock").exists()
        job = await run_one_job(session, base, write_png(tmp_path / "p.png", ["still here"]))
        assert job["state"] == "succeeded", job


async def test_children_follow_a_killed_supervisor(up: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = up
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
    family = descendants(process)
    assert len(family) >= 3  # redis-server, web, worker
    process.kill()
    process.wait()
    _, alive = psutil.wait_procs(family, timeout=20)
    assert alive == []


async def test_logs_are_json_lines_with_the_job_id_off_a_terminal(
    up: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    process, base = up
    png = write_png(tmp_path / "page.png", ["Logged as JSON"])
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
        job = await run_one_job(session, base, png)
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 40)
    lines = [
        json.loads(line)
        for line in (tmp_path / "up.log").read_text().splitlines()
        if line.startswith("{")
    ]
    about_job = [line for line in lines if line.get("job_id") == job["id"]]
    assert about_job, "no log line carries the job id"
    assert {"ts", "level", "logger", "message"} <= set(about_job[0])


async def test_web_runs_several_ingress_processes_on_one_port(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
    env.update(OCRFLOW_PORT=str(port), OCRFLOW_REDIS_URL=redis_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "ocrflow", "web", "--processes", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, f"http://127.0.0.1:{port}")
        # One answering is not both bound: give the second a moment.
        async with asyncio.timeout(15):
            while len(listening := listeners(process, port)) < 2:
                await asyncio.sleep(0.1)
        assert len(listening) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert not [p for p in psutil.pids() if p in listening]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def listeners(process: subprocess.Popen[bytes], port: int) -> set[int]:
    found = set()
    for child in descendants(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any(c.laddr.port == port for c in child.net_connections(kind="tcp")):
                found.add(child.pid)
    return found
