"""Running one document through the pipeline on the pool, reporting each page as it finishes."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ocrflow.handlers.runtime.pool import OcrPool
from ocrflow.pipeline.document import Plan, inspect_document, read_text_pages
from ocrflow.pipeline.errors import PageCrashed, ResultTooLarge
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.outputs import check_pages
from ocrflow.pipeline.page import PageTask, failed_page, process_page
from ocrflow.pipeline.result import PageResult

# Called with the pages done so far, the page count, and the pages that just finished (one
# recognised page, or a chunk read from text layers, or none at the start).
PageCallback = Callable[[int, int, Sequence[PageResult]], Awaitable[None]]


async def run_document(
    pool: OcrPool,
    source: Path,
    media_type: MediaType,
    workdir: Path,
    options: OcrOptions,
    runtime: Runtime,
    on_page: PageCallback,
) -> list[PageResult]:
    """Recognise every page; pages come back in page order."""
    plan: Plan = await pool.run(inspect_document, source, media_type, workdir, options, runtime)
    pages: list[PageResult] = []
    words = 0

    async def finished(batch: Sequence[PageResult]) -> None:
        nonlocal words
        words += sum(page.words for page in batch)
        if words > runtime.max_document_words:
            raise ResultTooLarge(f"the document holds more than {runtime.max_document_words} words")
        pages.extend(batch)
        await on_page(len(pages), plan.page_count, batch)

    await on_page(0, plan.page_count, ())
    read = await _read_text_layers(pool, source, plan, runtime, finished)
    await _recognize(pool, plan.answered(read).tasks, finished)
    check_pages(pages)
    return sorted(pages, key=lambda page: page.number)


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


async def _recognize(pool: OcrPool, tasks: tuple[PageTask, ...], finished: Finished) -> None:
    # A bounded window per document lets documents running side by side share the pool.
    window = asyncio.Semaphore(pool.processes * 2)

    async def one(task: PageTask) -> PageResult:
        async with window:
            try:
                return await pool.run(process_page, task)
            except BrokenProcessPool:  # it killed its process on every try (a native crash)
                message = f"page {task.number} crashed the OCR process on every try"
                return failed_page(task, PageCrashed(message))

    running = [asyncio.ensure_future(one(task)) for task in tasks]
    try:
        for next_done in asyncio.as_completed(running):
            await finished((await next_done,))
    finally:
        for future in running:
            future.cancel()
