"""The OCR process pool: one Tesseract thread per process, rebuilt when a process dies."""

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ocrflow.runtime.deathsig import die_with_parent

if TYPE_CHECKING:
    from ocrflow.pipeline.options import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")


def init_process(memory_limit: int = 0) -> None:
    """Runs in each pool process before any work."""
    if memory_limit:
        # Address space, for this process and the poppler and tesseract processes it starts:
        # a hostile page fails with an error instead of taking the machine's memory.
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    # Parallelism comes from the pool; OpenMP threads inside each Tesseract would thrash.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    # Ignore Ctrl-C in the terminal's process group: the worker decides when the pool stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker killed outright must not leave its pool processes behind.
    die_with_parent()


def load_engine(engine: "Engine", lang: str) -> None:
    """Runs in a pool process: load the engine and the models for `lang` before any page."""
    from ocrflow.pipeline.page import warm_up  # only pool processes import the pipeline's pages

    warm_up(engine, lang, hold=0.0)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (a pool process and its tesseract)."""
    for child in _children(pid):
        kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:
        return []


def _quiet_broken_pool_race(args: threading.ExceptHookArgs) -> None:
    """CPython 3.11's executor thread, marking a killed pool's calls failed, raises on a call
    cancelled meanwhile (3.12 ignores it: the same race, and nothing is lost), and the thread's
    traceback landed on the terminal of whoever pressed Ctrl-C. Only that one is kept quiet."""
    frames = traceback.extract_tb(args.exc_traceback) if args.exc_traceback else []
    if args.exc_type is InvalidStateError and any(f.name == "terminate_broken" for f in frames):
        return
    _THREAD_HOOK(args)


_THREAD_HOOK = threading.excepthook
if sys.version_info < (3, 12):
    threading.excepthook = _quiet_broken_pool_race


class OcrPool:
    """A ProcessPoolExecutor that replaces itself after a crash and retries the lost call."""

    def __init__(self, processes: int, *, crash_retries: int = 2, memory_limit: int = 0) -> None:
        self.processes = processes
        self.crash_retries = crash_retries
        self.memory_limit = memory_limit
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_process,
            initargs=(self.memory_limit,),
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        for attempt in range(self.crash_retries + 1):
            executor = self._executor
            try:
                return await loop.run_in_executor(executor, fn, *args)
            except BrokenProcessPool:
                if attempt == self.crash_retries:
                    raise
                log.warning("a pool process died; rebuilding the pool and retrying")
                self._replace(executor)
        raise AssertionError("unreachable")

    def warm(self, engine: "Engine", lang: str) -> None:
        """Start a process now and load the engine in it, without waiting: the caller goes on
        with its own start-up meanwhile. Processes after the first start as work arrives."""
        self._executor.submit(load_engine, engine, lang)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:
            self._executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)

    def kill(self) -> None:
        """Stop all work at once: kill every pool process and what it started, start afresh.

        Calls in flight for other jobs see the pool break and are retried on the new one.
        """
        broken = self._executor
        self._executor = self._new_executor()
        # ProcessPoolExecutor has no public way to reach its processes.
        for process in list(getattr(broken, "_processes", {}).values()):
            kill_tree(process.pid)
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
