"""The OCR pool survives a pool process dying under it."""

import os
import signal
from pathlib import Path

from ocrflow.runtime.pool import OcrPool


def die_once(marker: str) -> int:
    """Kill the calling pool process the first time, answer the second time."""
    if not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def omp_limit() -> str | None:
    return os.environ.get("OMP_THREAD_LIMIT")


async def test_a_killed_pool_process_is_replaced_and_the_call_retried(tmp_path: Path) -> None:
    pool = OcrPool(1)
    try:
        first_pid = await pool.run(os.getpid)
        pid = await pool.run(die_once, str(tmp_path / "died"))
        assert pid != first_pid
        assert await pool.run(os.getpid) == pid
    finally:
        pool.close()


async def test_pool_processes_run_tesseract_single_threaded() -> None:
    pool = OcrPool(1)
    try:
        assert await pool.run(omp_limit) == "1"
    finally:
        pool.close()
