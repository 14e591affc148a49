"""Running one document through the pipeline on the pool, reporting each page as it finishes."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from handlers.pool import OcrPool
from pipeline.document import Plan, plan_document
from pipeline.media import MediaType
from pipeline.options import OcrOptions, Runtime
from pipeline.outputs import check_pages
from pipeline.page import process_page
from pipeline.result import PageResult

# Called with the pages done so far, the page count, and the page that just finished (if any).
PageCallback = Callable[[int, int, PageResult | None], Awaitable[None]]


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
    plan: Plan = await pool.run(plan_document, source, media_type, workdir, options, runtime)
    pages: list[PageResult] = []
    await on_page(0, plan.page_count, None)
    for page in plan.text_pages:
        pages.append(page)
        await on_page(len(pages), plan.page_count, page)
    # A bounded window per document lets documents running side by side share the pool.
    window = asyncio.Semaphore(pool.processes * 2)

    async def one(task: object) -> PageResult:
        async with window:
            return await pool.run(process_page, task)

    running = [asyncio.ensure_future(one(task)) for task in plan.tasks]
    try:
        for finished in asyncio.as_completed(running):
            page = await finished
            pages.append(page)
            await on_page(len(pages), plan.page_count, page)
    finally:
        for future in running:
            future.cancel()
    check_pages(pages)
    return sorted(pages, key=lambda page: page.number)
