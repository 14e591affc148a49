"""A document's plan: which pages are read from their text layer and which go to recognition."""

import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from ocrflow.pipeline import poppler
from ocrflow.pipeline.errors import InvalidImage, TooManyPages
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.page import PageTask, check_pixels, open_image
from ocrflow.pipeline.resolution import POINTS_PER_INCH
from ocrflow.pipeline.result import PageResult

# A page whose text layer has fewer characters than this is treated as a scan.
MIN_TEXT_LAYER_CHARS = 8
# Text layers are read this many pages at a time, so the pool reads a long document in parallel.
TEXT_CHUNK = 25


@dataclass(frozen=True)
class Plan:
    page_count: int
    tasks: tuple[PageTask, ...]  # one per page still to recognise
    text_pages: tuple[PageResult, ...] = ()  # pages already answered from their text layer
    text_layer: bool = False  # whether pages may still be answered from a text layer
    selected: frozenset[int] | None = None  # the only pages to read; None: every page

    def only(self, numbers: Collection[int]) -> "Plan":
        """This plan reading only the pages numbered `numbers` (those the document has)."""
        wanted = frozenset(n for n in numbers if 1 <= n <= self.page_count)
        return replace(
            self,
            tasks=tuple(task for task in self.tasks if task.number in wanted),
            text_pages=tuple(page for page in self.text_pages if page.number in wanted),
            selected=wanted,
        )

    @property
    def pages_to_read(self) -> int:
        return self.page_count if self.selected is None else len(self.selected)

    def answered(self, pages: list[PageResult]) -> "Plan":
        """This plan with `pages` answered from the text layer instead of recognised."""
        if self.selected is not None:
            pages = [page for page in pages if page.number in self.selected]
        done = {page.number for page in pages}
        return replace(
            self,
            tasks=tuple(task for task in self.tasks if task.number not in done),
            text_pages=self.text_pages + tuple(pages),
            text_layer=False,
        )

    def text_chunks(self) -> list[tuple[int, int]]:
        """Page ranges whose text layer is still to be read: runs of the pages to read, at
        most TEXT_CHUNK pages each."""
        if not self.text_layer:
            return []
        numbers = range(1, self.page_count + 1) if self.selected is None else sorted(self.selected)
        chunks: list[tuple[int, int]] = []
        for number in numbers:
            if chunks and chunks[-1][1] == number - 1 and number - chunks[-1][0] < TEXT_CHUNK:
                chunks[-1] = (chunks[-1][0], number)
            else:
                chunks.append((number, number))
        return chunks


def plan_document(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, runtime: Runtime
) -> Plan:
    """Inspect a document and triage every page, in this process."""
    plan = inspect_document(source, media_type, workdir, options, runtime)
    read: list[PageResult] = []
    for first, last in plan.text_chunks():
        read.extend(read_text_pages(source, first, last, runtime))
    return plan.answered(read) if plan.text_layer else plan


def count_pages(source: Path, media_type: MediaType, *, timeout: float) -> int:
    """How many pages a document has, found cheaply (no page decoded, no limit checked)."""
    if media_type is MediaType.PDF:
        return poppler.pdf_info(source, timeout=timeout, max_pages=1).pages
    if media_type is MediaType.TIFF:
        with open_image(source) as image:
            return int(getattr(image, "n_frames", 1))
    return 1


def inspect_document(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, runtime: Runtime
) -> Plan:
    """Count the pages and make a recognition task for each; text layers are read apart."""
    if media_type is MediaType.PDF:
        return _inspect_pdf(source, workdir, options, runtime)
    return _inspect_raster(source, media_type, workdir, options, runtime)


def _inspect_pdf(source: Path, workdir: Path, options: OcrOptions, runtime: Runtime) -> Plan:
    info = poppler.pdf_info(source, timeout=runtime.page_timeout, max_pages=runtime.max_pages)
    _check_page_count(info.pages, runtime)
    tasks = tuple(
        replace(
            _task(source, MediaType.PDF, number, options.dpi, workdir, options, runtime),
            page_size=size,
        )
        for number, size in enumerate(info.sizes, start=1)
    )
    return Plan(page_count=info.pages, tasks=tasks, text_layer=not options.force_ocr)


def read_text_pages(source: Path, first: int, last: int, runtime: Runtime) -> list[PageResult]:
    """Pages first..last that carry a usable text layer, read from it."""
    started = time.perf_counter()
    pages = poppler.text_layer(
        source,
        first=first,
        last=last,
        timeout=runtime.page_timeout,
        max_page_words=runtime.max_page_words,
    )
    each = (time.perf_counter() - started) / max(len(pages), 1)
    results = []
    for number, page in enumerate(pages, start=first):
        text = "\n".join(line.text for line in page.lines)
        if len("".join(text.split())) < MIN_TEXT_LAYER_CHARS:
            continue
        results.append(
            PageResult(
                number=number,
                method="text-layer",
                width=round(page.width),
                height=round(page.height),
                dpi=POINTS_PER_INCH,
                text=text,
                lines=page.lines,
                seconds=each,
            )
        )
    return results


def _inspect_raster(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, runtime: Runtime
) -> Plan:
    with open_image(source) as image:
        frames = getattr(image, "n_frames", 1) if media_type is MediaType.TIFF else 1
        _check_page_count(frames, runtime)
        check_pixels(image.size, runtime.max_page_pixels, 1)
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidImage("the image could not be decoded: damaged or truncated") from exc
    tasks = tuple(
        _task(source, media_type, number, options.dpi, workdir, options, runtime)
        for number in range(1, frames + 1)
    )
    return Plan(page_count=frames, tasks=tasks)


def _check_page_count(pages: int, runtime: Runtime) -> None:
    if pages > runtime.max_pages:
        raise TooManyPages(
            f"the document has {pages} pages, more than the limit of {runtime.max_pages}"
        )


def _task(
    source: Path,
    media_type: MediaType,
    number: int,
    dpi: int,
    workdir: Path,
    options: OcrOptions,
    runtime: Runtime,
) -> PageTask:
    return PageTask(
        source=source,
        media_type=media_type,
        number=number,
        dpi=dpi,
        workdir=workdir,
        options=options,
        timeout=runtime.page_timeout,
        max_pixels=runtime.max_page_pixels,
        engine=runtime.engine,
        preview=runtime.previews,
    )
