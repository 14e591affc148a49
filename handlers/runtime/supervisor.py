"""`ocrflow up`: a private Redis (unless REDIS_URL is set), the web ingress and a worker."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from ocrflow.handlers.runtime.deathsig import die_with_parent
from ocrflow.handlers.runtime.redis_server import RedisServer
from ocrflow.handlers.settings import Settings

log = logging.getLogger(__name__)

# One ingress process, or several sharing the port (SO_REUSEPORT: the kernel spreads
# connections), each started as "web --single".
SINGLE_WEB = ("web", "--single")
STOP_GRACE = 25.0  # under Render's 30 s shutdown delay


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
    redis_server = None
    if settings.redis_url is None:
        redis_server = RedisServer(data_dir / "redis")
        env["OCRFLOW_REDIS_URL"] = redis_server.start()
        log.info("embedded Redis at %s", redis_server.url)
    try:
        return _supervise(env, [*web_roles(settings), ("worker",)])
    finally:
        if redis_server is not None:
            redis_server.stop()


def web_roles(settings: Settings) -> list[tuple[str, ...]]:
    return [SINGLE_WEB] * settings.web_processes


def run_web_processes(settings: Settings, environ: Mapping[str, str]) -> int:
    """`ocrflow web` with OCRFLOW_WEB_PROCESSES > 1: that many ingress processes on one port."""
    return _supervise({**environ, **_listening(settings)}, web_roles(settings))


def _listening(settings: Settings) -> dict[str, str]:
    """What the command line may have set, passed on to the children."""
    return {
        "OCRFLOW_HOST": settings.host,
        "OCRFLOW_PORT": str(settings.port),
        "OCRFLOW_WEB_PROCESSES": str(settings.web_processes),
    }


def _supervise(env: Mapping[str, str], roles: Sequence[Sequence[str]]) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    children = [(" ".join(role), _spawn(role, env)) for role in roles]
    status = 0
    while not stop.wait(0.2):
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
