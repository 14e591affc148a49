"""A private redis-server child process, for `ocrflow up` and for the tests."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from ocrflow.runtime.deathsig import die_with_parent

UNIX_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; leave room


class RedisServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """redis-server on a unix socket (or loopback port) under `directory`, persisted with AOF."""

    def __init__(self, directory: Path, *, port: int | None = None, persist: bool = True) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None
        socket_path = self.directory / "redis.sock"
        self._socket = (
            socket_path if port is None and len(str(socket_path)) < UNIX_SOCKET_PATH_MAX else None
        )
        if self._socket is None and self.port is None:
            self.port = free_port()

    @property
    def url(self) -> str:
        if self._socket is not None:
            return f"unix://{self._socket}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, binary: str) -> list[str]:
        listen = (
            ["--port", "0", "--unixsocket", str(self._socket), "--unixsocketperm", "700"]
            if self._socket is not None
            else ["--port", str(self.port), "--bind", "127.0.0.1"]
        )
        persistence = ["--appendonly", "yes" if self.persist else "no", "--save", ""]
        return [
            binary,
            *listen,
            *persistence,
            "--dir",
            str(self.directory),
            "--maxmemory-policy",
            "noeviction",
            "--loglevel",
            "warning",
        ]

    def start(self, timeout: float = 10.0) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError("redis-server is not installed (see scripts/setup)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self._command(binary),
            stdin=subprocess.DEVNULL,
            process_group=0,  # Ctrl-C goes to the owner, which stops Redis last
            preexec_fn=die_with_parent,
        )
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RedisServerError(f"redis-server exited with {self.process.returncode}")
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM lets Redis flush its append-only file before it exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
