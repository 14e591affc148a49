"""Running one document through the pipeline on the pool, reporting each page as it finishes."""

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

from ocrflow.pipeline.document import Plan, inspect_document, read_text_pages
from ocrflow.pipeline.errors import PageCrashed, ResultTooLarge
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.outputs import check_pages
from ocrflow.pipeline.page import PageTask, failed_page, page_orientation, process_page
from ocrflow.pipeline.result import PageResult
from ocrflow.runtime.pool import OcrPool

# Called with the pages done so far, the page count, and the pages that just finished (one
# recognised page, or a chunk read from text layers, or none at the start).
PageCallback = Callable[[int, int, Sequence[PageResult]], Awaitable[None]]


class Reading:
    """The pages of one document (or one range of it) read so far, kept under the document's
    word limit, each batch reported as it finishes."""

    def __init__(self, page_count: int, runtime: Runtime, on_page: PageCallback) -> None:
        self.page_count, self._runtime, self._on_page = page_count, runtime, on_page
        self.pages: list[PageResult] = []
        self._words = 0

    async def finished(self, batch: Sequence[PageResult]) -> None:
        self._words += sum(page.words for page in batch)
        most = self._runtime.max_document_words
        if self._words > most:
            raise ResultTooLarge(f"the document holds more than {most} words")
        self.pages.extend(batch)
        await self._on_page(len(self.pages), self.page_count, batch)

    def in_order(self) -> list[PageResult]:
        return sorted(self.pages, key=lambda page: page.number)


async def triage(
    pool: OcrPool,
    source: Path,
    media_type: MediaType,
    workdir: Path,
    options: OcrOptions,
    runtime: Runtime,
    on_page: PageCallback,
    pages: Collection[int] | None = None,
) -> tuple[Plan, Reading]:
    """Count the pages and read the text layers (of `pages` only, when given): the plan of
    what is left to recognise, and the reading with the pages answered so far."""
    plan: Plan = await pool.run(inspect_document, source, media_type, workdir, options, runtime)
    if pages is not None:
        plan = plan.only(pages)
    reading = Reading(plan.pages_to_read, runtime, on_page)
    await on_page(0, plan.pages_to_read, ())
    read = await _read_text_layers(pool, source, plan, runtime, reading.finished)
    return plan.answered(read), reading


async def run_document(
    pool: OcrPool,
    source: Path,
    media_type: MediaType,
    workdir: Path,
    options: OcrOptions,
    runtime: Runtime,
    on_page: PageCallback,
    pages: Collection[int] | None = None,
    *,
    speculate: bool = False,
) -> list[PageResult]:
    """Read every page (or `pages` only); pages come back in page order. `speculate`: as for
    `recognize`."""
    plan, reading = await triage(
        pool, source, media_type, workdir, options, runtime, on_page, pages
    )
    await recognize(pool, plan.tasks, reading.finished, speculate=speculate)
    check_pages(reading.pages)
    return reading.in_order()


Finished = Callable[[Sequence[PageResult]], Awaitable[None]]


async def _read_text_layers(
    pool: OcrPool, source: Path, plan: Plan, runtime: Runtime, finished: Finished
) -> list[PageResult]:
    """Read text layers chunk by chunk, the chunks spread over the pool."""
    chunks = await asyncio.gather(
        *(
            pool.run(read_text_pages, source, first, last, runtime)
            for first, last in plan.text_chunks()
        )
    )
    for chunk in chunks:
        if chunk:
            await finished(chunk)
    return [page for chunk in chunks for page in chunk]


async def recognize(
    pool: OcrPool, tasks: Sequence[PageTask], finished: Finished, *, speculate: bool = False
) -> None:
    """Read the pages on the pool. With `speculate` (a machine that reads one document), a lone
    page to turn upright is read as it is while another process finds its orientation: most
    pages are upright, and then the page took its reading time alone."""
    # A bounded window per document lets documents running side by side share the pool.
    window = asyncio.Semaphore(pool.processes * 2)

    async def one(task: PageTask) -> PageResult:
        async with window:
            return await _page(pool, task)

    if speculate and len(tasks) == 1 and pool.processes > 1 and _turns(tasks[0]):
        await finished((await _upright_first(pool, tasks[0]),))
        return
    running = [asyncio.ensure_future(one(task)) for task in tasks]
    try:
        for next_done in asyncio.as_completed(running):
            await finished((await next_done,))
    finally:
        for future in running:
            future.cancel()


async def _page(pool: OcrPool, task: PageTask) -> PageResult:
    try:
        return await pool.run(process_page, task)
    except BrokenProcessPool:  # it killed its process on every try (a native crash)
        message = f"page {task.number} crashed the OCR process on every try"
        return failed_page(task, PageCrashed(message))


def _turns(task: PageTask) -> bool:
    return task.options.rotate and task.rotation is None


async def _upright_first(pool: OcrPool, task: PageTask) -> PageResult:
    """The page read as if upright, beside its orientation found on another process (or on the
    same one, if it frees first); read again, turned, only when it was not upright. The
    result is the one reading it turned first would give."""
    as_is = asyncio.ensure_future(_page(pool, replace(task, rotation=0)))  # the warm process
    try:
        try:
            rotation = await pool.run(page_orientation, task)
        except BrokenProcessPool:
            rotation = None
        if rotation == 0:
            return await as_is
    finally:
        # Turned, or stopped: its process finishes the page for nothing; the pool stays whole.
        as_is.cancel()
    return await _page(pool, task if rotation is None else replace(task, rotation=rotation))
