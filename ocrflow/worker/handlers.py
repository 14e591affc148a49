"""The handlers a job names, run one after another once its OCR outputs are stored, each in a
process of its own (`ocrflow.handlers.child`): its memory capped, killed at its timeout
or when the job is cancelled. A handler that fails is recorded on the job and the job goes on."""

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from ocrflow.errors import ErrorCode
from ocrflow.handlers.api import HandlerFailed, check_output_name
from ocrflow.jobs import stats
from ocrflow.jobs.events import EventKind
from ocrflow.jobs.records import HandlerRun, Job, JobError, JobState
from ocrflow.jobs.services import Services
from ocrflow.runtime.pool import kill_tree
from ocrflow.storage import layout
from ocrflow.worker.outcomes import RUNNING_ONLY, JobStopped

log = logging.getLogger(__name__)

LINE_LIMIT = 1024 * 1024  # the longest answer line a handler's process may send
# Of the job's own time (OCRFLOW_JOB_TIMEOUT), what is kept back from handlers to store their
# outputs and end the job: a handler times out alone, before the job would.
JOB_MARGIN = 10.0
STDERR_TAIL = 20  # lines of a handler's standard error kept for its error message
CANCELLED_ONLY = frozenset({JobState.CANCELLED})


async def run_handlers(
    services: Services, job: Job, result: Path, workdir: Path, deadline: float
) -> dict[str, str]:
    """Run the job's handlers over its JSON result (`result`, a local file); return the outputs
    they stored (name -> key), to add to the job's outputs. `deadline` (a `time.time()`) is
    when the job's own time ends."""
    if not job.handlers:
        return {}
    out_dir = workdir / "handlers"
    out_dir.mkdir()
    runs = {name: run.fresh() for name, run in job.handlers.items()}
    try:
        stored = await _run_all(services, job, runs, result, out_dir, deadline)
    except (JobStopped, asyncio.CancelledError):
        await asyncio.shield(_cancelled(services, job.id, runs))
        raise
    verdict = job.model_copy(update={"handlers": runs}).verdict
    if verdict is not None:
        await stats.count_checks(services.redis, verdict.passed)
    return stored


async def _cancelled(services: Services, job_id: str, runs: dict[str, HandlerRun]) -> None:
    """A job cancelled while its handlers ran: the one running and those that never began say
    so on its record, rather than running or pending for ever. (A worker stopping hands the job
    back instead: it is not cancelled, and this writes nothing.)"""
    ended = {
        name: run
        if run.state in ("succeeded", "failed")
        else run.model_copy(update={"state": "cancelled"})
        for name, run in runs.items()
    }
    await services.jobs.update(job_id, only_from=CANCELLED_ONLY, handlers=ended)


async def _run_all(
    services: Services,
    job: Job,
    runs: dict[str, HandlerRun],
    result: Path,
    out_dir: Path,
    deadline: float,
) -> dict[str, str]:
    stored: dict[str, str] = {}
    earlier: dict[str, Any] = {}
    # One budget for all the job's handlers: together they take at most OCRFLOW_HANDLER_TIMEOUT.
    budget_end = time.monotonic() + services.settings.handler_timeout
    for name, asked in runs.items():
        runs[name] = asked.model_copy(update={"state": "running"})
        await _record(services, job.id, runs, name, {"state": "running"})
        started = time.monotonic()
        request = {
            "handler": name,
            "params": asked.params,
            "job": {
                "id": job.id,
                "filename": job.source.filename,
                "options": job.options.model_dump(mode="json"),
                "metadata": job.metadata,
            },
            "result": str(result),
            "out_dir": str(out_dir),
            "earlier": earlier,
            "memory_limit": services.settings.handler_memory_limit,
        }
        left = deadline - JOB_MARGIN - time.time()
        budget = budget_end - time.monotonic()
        ended = await _HandlerProcess(services, job.id, name, left, budget).run(request)
        seconds = round(time.monotonic() - started, 3)
        if ended.error is None:
            for output, media_type in ended.outputs.items():
                key = layout.handler_output_key(job.id, output)
                content_type = media_type or layout.output_media_type(output)
                await services.storage.put_file(key, out_dir / output, content_type=content_type)
                stored[output] = key
            earlier[name] = ended.summary
            runs[name] = HandlerRun(
                params=asked.params,
                state="succeeded",
                summary=ended.summary,
                outputs=list(ended.outputs),
                seconds=seconds,
            )
            event = {"state": "succeeded", "summary": ended.summary, "outputs": list(ended.outputs)}
        else:
            for output in ended.outputs:  # a failed handler's outputs are not kept
                (out_dir / output).unlink(missing_ok=True)
            log.warning("handler %s failed: %s: %s", name, ended.error.code, ended.error.message)
            runs[name] = HandlerRun(
                params=asked.params, state="failed", error=ended.error, seconds=seconds
            )
            event = {"state": "failed", "error": ended.error.model_dump(mode="json")}
        await _record(services, job.id, runs, name, event)
    return stored


async def _record(
    services: Services, job_id: str, runs: dict[str, HandlerRun], name: str, event: dict[str, Any]
) -> None:
    if not await services.jobs.update(job_id, only_from=RUNNING_ONLY, handlers=runs):
        # Cancelled meanwhile (its handler's process killed): the record says so of this handler
        # and of those that never began, rather than leave them running or pending for ever.
        ended = {
            other: run
            if run.state in ("succeeded", "failed") and other != name
            else run.model_copy(update={"state": "cancelled", "error": None, "summary": None})
            for other, run in runs.items()
        }
        await services.jobs.update(job_id, only_from=CANCELLED_ONLY, handlers=ended)
        raise JobStopped(job_id)
    await services.events.publish(job_id, EventKind.HANDLER, {"handler": name, **event})


class _Ended:
    def __init__(self) -> None:
        self.outputs: dict[str, str | None] = {}  # name -> media type the handler gave
        self.summary: dict[str, Any] | None = None
        self.error: JobError | None = None


class _HandlerProcess:
    """One handler's process, from its request to its answer (or its death)."""

    def __init__(
        self, services: Services, job_id: str, name: str, job_left: float, budget: float
    ) -> None:
        self._services = services
        self._job_id = job_id
        self._name = name
        self._ended = _Ended()
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL)
        self._timeout = budget
        self._job_left = job_left
        whole = services.settings.handler_timeout
        shared = f"what was left of the {whole:g} s the job's handlers share"
        self._limit = "OCRFLOW_HANDLER_TIMEOUT" if budget >= whole else shared

    async def run(self, request: dict[str, Any]) -> _Ended:
        if self._job_left < 1:
            timeout = self._services.settings.job_timeout
            message = f"no time was left of the job's {timeout:g} s (OCRFLOW_JOB_TIMEOUT)"
            self._fail(ErrorCode.HANDLER_TIMEOUT, message)
            return self._ended
        if self._timeout < 1:
            whole = self._services.settings.handler_timeout
            message = (
                f"no time was left of the {whole:g} s the job's handlers share "
                "(OCRFLOW_HANDLER_TIMEOUT)"
            )
            self._fail(ErrorCode.HANDLER_TIMEOUT, message)
            return self._ended
        if self._job_left < self._timeout:
            self._timeout = self._job_left
            self._limit = "what was left of the job's OCRFLOW_JOB_TIMEOUT"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocrflow.handlers.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            limit=LINE_LIMIT,
        )
        assert process.stdin and process.stdout and process.stderr
        logging_task = asyncio.create_task(self._log(process.stderr))
        try:
            process.stdin.write(json.dumps(request).encode())
            await process.stdin.drain()
            process.stdin.close()
            await self._answers(process.stdout)
        except TimeoutError:
            message = f"the handler took longer than {self._timeout:g} s ({self._limit})"
            self._fail(ErrorCode.HANDLER_TIMEOUT, message)
        except (ValueError, asyncio.LimitOverrunError) as exc:  # a line past LINE_LIMIT
            self._fail(ErrorCode.HANDLER_FAILED, f"the handler's answer was unreadable: {exc}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died before reading its request: said below
        finally:
            # Done, timed out, or cancelled (the job was, or the worker stops): no orphan. Not
            # yet waited for, so its pid is still its own.
            kill_tree(process.pid)
            await asyncio.shield(process.wait())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(logging_task, 5)
        if self._ended.error is None and self._ended.summary is None:
            self._fail(ErrorCode.HANDLER_FAILED, self._died(process.returncode))
        out_dir = Path(request["out_dir"])
        missing = [name for name in self._ended.outputs if not (out_dir / name).is_file()]
        if self._ended.error is None and missing:
            self._fail(ErrorCode.HANDLER_FAILED, f"outputs said but not written: {missing}")
        return self._ended

    async def _answers(self, stdout: asyncio.StreamReader) -> None:
        start = asyncio.get_running_loop().time()
        async with asyncio.timeout_at(start + self._timeout) as scope:
            while line := await stdout.readline():
                try:
                    kind, value = next(iter(json.loads(line).items()))
                except (ValueError, AttributeError, StopIteration):
                    log.warning("handler %s: an answer that is not one: %.200r", self._name, line)
                    continue
                if kind == "started" and value.get("timeout"):
                    if float(value["timeout"]) < self._timeout:
                        self._timeout, self._limit = float(value["timeout"]), "its own timeout"
                    scope.reschedule(start + self._timeout)
                elif kind == "progress":
                    data = {"handler": self._name, "state": "running", **value}
                    await self._services.events.publish(self._job_id, EventKind.HANDLER, data)
                elif kind == "output":
                    # Names become storage keys: checked here too, whatever the process says.
                    try:
                        name = check_output_name(str(value["name"]))
                    except HandlerFailed as exc:
                        self._fail(ErrorCode.HANDLER_FAILED, str(exc))
                        return
                    self._ended.outputs[name] = value.get("media_type")
                elif kind == "summary":
                    self._ended.summary = value
                    return
                elif kind == "error":
                    self._fail(ErrorCode(value["code"]), value["message"])
                    return

    async def _log(self, stderr: asyncio.StreamReader) -> None:
        async for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            log.info("handler %s: %s", self._name, line)

    def _fail(self, code: ErrorCode, message: str) -> None:
        self._ended.error = JobError(code=code, message=message)

    def _died(self, returncode: int | None) -> str:
        if returncode is not None and returncode < 0:
            how = f"was killed by signal {-returncode}"
            if -returncode == 9:
                how += " (out of memory?)"
        else:
            how = f"exited with status {returncode} before answering"
        tail = " | ".join(line for line in self._stderr if line.strip())[-1000:]
        return f"the handler's process {how}" + (f": {tail}" if tail else "")
