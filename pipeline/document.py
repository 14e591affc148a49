"""A document's plan: which pages are read from their text layer and which go to recognition."""

import math
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import poppler
from pipeline.errors import InvalidImage, TooManyPages
from pipeline.media import MediaType
from pipeline.options import Limits, OcrOptions
from pipeline.page import PageTask, check_pixels, open_image
from pipeline.result import PageResult

# A page whose text layer has fewer characters than this is treated as a scan.
MIN_TEXT_LAYER_CHARS = 8
POINTS_PER_INCH = 72


@dataclass(frozen=True)
class Plan:
    page_count: int
    text_pages: tuple[PageResult, ...]
    tasks: tuple[PageTask, ...]


def plan_document(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, limits: Limits
) -> Plan:
    """Inspect the document once and split its pages into text-layer results and OCR tasks."""
    if media_type is MediaType.PDF:
        return _plan_pdf(source, workdir, options, limits)
    return _plan_raster(source, media_type, workdir, options, limits)


def _plan_pdf(source: Path, workdir: Path, options: OcrOptions, limits: Limits) -> Plan:
    info = poppler.pdf_info(source, timeout=limits.page_timeout, max_pages=limits.max_pages)
    _check_page_count(info.pages, limits)
    text_pages: list[PageResult] = []
    if not options.force_ocr:
        text_pages = _read_text_layer(source, limits)
    answered = {page.number for page in text_pages}
    tasks = tuple(
        _task(
            source,
            MediaType.PDF,
            number,
            _capped_dpi(size, options.dpi, limits),
            workdir,
            options,
            limits,
        )
        for number, size in enumerate(info.sizes, start=1)
        if number not in answered
    )
    return Plan(page_count=info.pages, text_pages=tuple(text_pages), tasks=tasks)


def _read_text_layer(source: Path, limits: Limits) -> list[PageResult]:
    started = time.perf_counter()
    pages = poppler.text_layer(source, timeout=limits.page_timeout)
    each = (time.perf_counter() - started) / max(len(pages), 1)
    results = []
    for number, page in enumerate(pages, start=1):
        text = "\n".join(line.text for line in page.lines)
        if sum(not c.isspace() for c in text) < MIN_TEXT_LAYER_CHARS:
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


def _capped_dpi(size: tuple[float, float], dpi: int, limits: Limits) -> int:
    """The requested resolution, lowered where the page would exceed the pixel limit."""
    if _pixels(size, dpi) <= limits.max_page_pixels:
        return dpi
    scaled = math.floor(dpi * math.sqrt(limits.max_page_pixels / _pixels(size, dpi)))
    # poppler rounds each side up, so step down until the rendered size really fits.
    while scaled > 1 and _pixels(size, scaled) > limits.max_page_pixels:
        scaled -= 1
    return max(1, scaled)


def _pixels(size: tuple[float, float], dpi: int) -> int:
    width, height = (math.ceil(points / POINTS_PER_INCH * dpi) for points in size)
    return width * height


def _plan_raster(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, limits: Limits
) -> Plan:
    with open_image(source) as image:
        frames = getattr(image, "n_frames", 1) if media_type is MediaType.TIFF else 1
        _check_page_count(frames, limits)
        check_pixels(image.size, limits.max_page_pixels, 1)
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidImage("the image could not be decoded: damaged or truncated") from exc
    tasks = tuple(
        _task(source, media_type, number, options.dpi, workdir, options, limits)
        for number in range(1, frames + 1)
    )
    return Plan(page_count=frames, text_pages=(), tasks=tasks)


def _check_page_count(pages: int, limits: Limits) -> None:
    if pages > limits.max_pages:
        raise TooManyPages(
            f"the document has {pages} pages, more than the limit of {limits.max_pages}"
        )


def _task(
    source: Path,
    media_type: MediaType,
    number: int,
    dpi: int,
    workdir: Path,
    options: OcrOptions,
    limits: Limits,
) -> PageTask:
    return PageTask(
        source=source,
        media_type=media_type,
        number=number,
        dpi=dpi,
        workdir=workdir,
        options=options,
        timeout=limits.page_timeout,
        max_pixels=limits.max_page_pixels,
    )
