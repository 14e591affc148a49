"""Helpers for tests and scripts that run ocrflow as real processes and talk to it over HTTP."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from ocrflow.handlers.runtime.deathsig import die_with_parent
from ocrflow.handlers.runtime.redis_server import free_port


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


class Service:
    """`ocrflow web` on a free loopback port, and workers started on demand, sharing one Redis.

    Benchmarks and soaks use one client for what would be many callers, so per-caller limits
    are off unless `env` sets them."""

    def __init__(self, directory: Path, redis_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
        self.env.update(
            OCRFLOW_REDIS_URL=redis_url,
            OCRFLOW_DATA_DIR=str(directory),
            OCRFLOW_PORT=str(self.port),
            OCRFLOW_POOL_PROCESSES="1",
            OCRFLOW_LOG_LEVEL="WARNING",
            OCRFLOW_RATE_LIMIT="0",
            OCRFLOW_MAX_ACTIVE_JOBS_PER_CALLER="0",
            OCRFLOW_RESULT_CACHE_TTL="0",
        )
        self.env.update(env)
        directory.mkdir(parents=True, exist_ok=True)
        self.log = (directory / "service.log").open("ab")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.web = self.start("web")

    def start(self, role: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocrflow", role],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=die_with_parent,
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.processes.remove(process)

    def close(self) -> None:
        for process in list(self.processes):
            self.stop(process)
        self.log.close()


def multipart(fields: dict[str, bytes], filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand, so hostile names and bytes reach the server as is."""
    boundary = "ocrflow-test-boundary-7d1f"
    body = b""
    for name, value in fields.items():
        head = f'Content-Disposition: form-data; name="{name}"'.encode()
        body += b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + value + b"\r\n"
    head = f'Content-Disposition: form-data; name="file"; filename="{filename}"'.encode()
    body += b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"
