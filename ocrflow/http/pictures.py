"""A page's picture, to look at beside its text (`GET /v1/jobs/{id}/pages/{n}/image`): the one
the worker kept as it read the page, served as a file; else (a page read from its text layer, a
width larger than kept) drawn by a process of its own, under a memory limit and the pixel limit,
one at a time per caller, so no caller's document grows the ingress or holds others' pictures."""

import asyncio
import contextlib
import io
import resource
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from PIL import Image

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller
from ocrflow.http.jobs import int_query, job_or_404
from ocrflow.http.state import SERVICES
from ocrflow.jobs.records import Job
from ocrflow.jobs.services import Services
from ocrflow.pipeline.page import PREVIEW_QUALITY, PREVIEW_WIDTH
from ocrflow.runtime.deathsig import die_with_parent
from ocrflow.storage import layout
from ocrflow.storage.backend import ObjectNotFound

WIDTHS = (100, 2000)  # least, most
DRAW_TIMEOUT = 20.0
DRAW_MEMORY = 1024 * 1024 * 1024  # bytes of address space a drawing process may take
DRAW_SLOTS = 2  # pictures drawn at once by one ingress process
CACHED = {"Cache-Control": "private, max-age=3600"}

routes = web.RouteTableDef()


@routes.get("/v1/jobs/{job_id}/pages/{number}/image")
async def page_image(request: web.Request) -> web.Response:
    """A page of the job's document (`?width=`, 900 px by default): the caller's own job, or
    any job for an operator."""
    job = await job_or_404(request)
    services = request.app[SERVICES]
    try:
        number = int(request.match_info["number"])
    except ValueError:
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "a page is a number") from None
    width = int_query(request, "width", PREVIEW_WIDTH, *WIDTHS)
    pages = job.progress.pages_total
    if job.source.media_type is None or number < 1 or (pages is not None and number > pages):
        raise OcrflowError(ErrorCode.NOT_FOUND, f"job {job.id} has no page {number} to show")
    if width <= PREVIEW_WIDTH:
        with contextlib.suppress(ObjectNotFound):
            kept = await services.storage.read_bytes(layout.preview_key(job.id, number))
            if width < PREVIEW_WIDTH:  # the kept picture is small: shrinking it costs little
                kept = await asyncio.to_thread(_narrower, kept, width)
            return web.Response(body=kept, content_type="image/jpeg", headers=CACHED)
    async with _turn(caller(request)):
        png = await _draw(services, job, number, width)
    return web.Response(body=png, content_type="image/png", headers=CACHED)


def _narrower(jpeg: bytes, width: int) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as picture:
        if picture.width <= width:
            return jpeg
        picture.thumbnail((width, picture.height), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=PREVIEW_QUALITY)
        return out.getvalue()


_slots = asyncio.Semaphore(DRAW_SLOTS)
_callers: dict[str, tuple[asyncio.Lock, int]] = {}  # caller -> its lock, its requests in


@contextlib.asynccontextmanager
async def _turn(who: str) -> AsyncIterator[None]:
    """One drawing at a time per caller, and `DRAW_SLOTS` in all: a caller asking for many
    waits behind itself, never in front of everyone else."""
    lock, count = _callers.get(who, (asyncio.Lock(), 0))
    _callers[who] = (lock, count + 1)
    try:
        async with lock, _slots:
            yield
    finally:
        lock, count = _callers[who]
        if count == 1:
            del _callers[who]
        else:
            _callers[who] = (lock, count - 1)


async def _draw(services: Services, job: Job, number: int, width: int) -> bytes:
    settings = services.settings
    with contextlib.ExitStack() as stack:
        source = services.storage.local_path(layout.source_key(job.id))
        if source is None:  # from S3, the source comes down to a scratch file first
            scratch = Path(stack.enter_context(_scratch(settings.work_dir)))
            source = scratch / "source"
            await services.storage.fetch(layout.source_key(job.id), source)
        elif not source.exists():
            raise OcrflowError(ErrorCode.NOT_FOUND, f"the document of job {job.id} is gone")
        args = [str(source), str(job.source.media_type), str(number), str(width)]
        args += [str(settings.max_page_pixels), str(DRAW_TIMEOUT)]
        return await _run_drawing(args, number)


def _scratch(work_dir: Path) -> "contextlib.AbstractContextManager[str]":
    work_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="picture-", dir=work_dir)


async def _run_drawing(args: list[str], number: int) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocrflow.pipeline.preview",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_limited,
    )
    try:
        async with asyncio.timeout(DRAW_TIMEOUT + 5):
            png, why = await process.communicate()
    except TimeoutError:
        raise OcrflowError(
            ErrorCode.NOT_FOUND, f"page {number} took longer than {DRAW_TIMEOUT:g} s to draw"
        ) from None
    finally:
        if process.returncode is None:  # timed out, or the caller left: the drawing stops too
            process.kill()
            await asyncio.shield(process.wait())
    if process.returncode != 0 or not png:
        reason = why.decode(errors="replace").strip().splitlines()[-1:] or ["it could not be drawn"]
        if process.returncode != 3:
            reason = [f"page {number} needs more than the memory a picture may take"]
        raise OcrflowError(ErrorCode.NOT_FOUND, reason[0][:300])
    return png


def _limited() -> None:
    """In the drawing process: its address space capped (poppler's inherits the cap), and it
    dies with the ingress."""
    resource.setrlimit(resource.RLIMIT_AS, (DRAW_MEMORY, DRAW_MEMORY))
    die_with_parent()
