"""`ocrflow up`: a private Redis (unless REDIS_URL is set), the web ingress and a worker."""

import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import IO

from ocrflow.runtime.deathsig import die_with_parent
from ocrflow.runtime.redis_server import RedisServer
from ocrflow.settings import Settings

log = logging.getLogger(__name__)

# One ingress process, or several sharing the port (SO_REUSEPORT: the kernel spreads
# connections), each started as "web --single".
SINGLE_WEB = ("web", "--single")
STOP_GRACE = 25.0  # under Render's 30 s shutdown delay
LOCK_FILE = "ocrflow.lock"


def _spawn(role: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # Each child gets its own process group: Ctrl-C reaches only this supervisor, which then
    # stops the children in order (web and worker first, Redis last). If the supervisor is
    # killed outright, die_with_parent takes its children with it.
    return subprocess.Popen(
        [sys.executable, "-m", "ocrflow", *role],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=die_with_parent,
    )


def run_up(settings: Settings, environ: Mapping[str, str]) -> int:
    env = dict(environ)
    data_dir = settings.data_dir.resolve()
    env.update(_listening(settings), OCRFLOW_DATA_DIR=str(data_dir))
    try:
        lock = hold_data_dir(data_dir)
    except DataDirInUse as exc:
        print(f"ocrflow up: {exc}", file=sys.stderr)
        return 2
    with lock:
        if not settings.authenticated:
            log.warning(
                "no authentication configured: serving %s only (set OCRFLOW_API_KEYS to open up)",
                settings.host,
            )
        return _run_up(settings, env, data_dir)


class DataDirInUse(Exception):
    pass


def hold_data_dir(data_dir: Path) -> IO[str]:
    """Hold the data directory for as long as the returned file stays open: a second
    `ocrflow up` on it would start a second Redis on the same socket and append-only file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise DataDirInUse(
            f"ocrflow is already running on {data_dir} (pid {holder}); stop it, or give this "
            "one its own --data-dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _run_up(settings: Settings, env: dict[str, str], data_dir: Path) -> int:
    redis_server = None
    if settings.redis_url is None:
        redis_server = RedisServer(data_dir / "redis")
        env["OCRFLOW_REDIS_URL"] = redis_server.start()
        log.info("embedded Redis at %s", redis_server.url)
    try:
        return _supervise(env, [*web_roles(settings), ("worker",)], ready=_ready_url(settings))
    finally:
        if redis_server is not None:
            redis_server.stop()


def web_roles(settings: Settings) -> list[tuple[str, ...]]:
    return [SINGLE_WEB] * settings.web_processes


def run_web_processes(settings: Settings, environ: Mapping[str, str]) -> int:
    """`ocrflow web` with OCRFLOW_WEB_PROCESSES > 1: that many ingress processes on one port."""
    roles = web_roles(settings)
    return _supervise({**environ, **_listening(settings)}, roles, ready=_ready_url(settings))


def _listening(settings: Settings) -> dict[str, str]:
    """What the command line may have set, passed on to the children."""
    return {
        "OCRFLOW_HOST": settings.host,
        "OCRFLOW_PORT": str(settings.port),
        "OCRFLOW_WEB_PROCESSES": str(settings.web_processes),
    }


def _ready_url(settings: Settings) -> str:
    """Where the service answers, as a person opens it (any address: this machine's)."""
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=0.5) as response:
            return bool(response.status == HTTPStatus.OK)
    except (OSError, ValueError):
        return False


def _supervise(env: Mapping[str, str], roles: Sequence[Sequence[str]], *, ready: str) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children = [(" ".join(role), _spawn(role, env)) for role in roles]
    status, announced = 0, False
    while not stop.wait(0.2):
        if not announced and _answers(ready):
            print(f"ocrflow is ready at {ready} (Ctrl-C stops it)", flush=True)
            announced = True
        exited = [role for role, child in children if child.poll() is not None]
        if exited:
            log.error("%s exited unexpectedly; stopping ocrflow", ", ".join(exited))
            status = 1
            break
    _stop_all([child for _, child in children])
    return status


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop in %g s; killing it", child.pid, STOP_GRACE)
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
