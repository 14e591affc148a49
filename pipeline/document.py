"""A document's plan: which pages are read from their text layer and which go to recognition."""

import math
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import poppler
from pipeline.errors import InvalidImage, TooManyPages
from pipeline.media import MediaType
from pipeline.options import OcrOptions, Runtime
from pipeline.page import PageTask, check_pixels, open_image
from pipeline.result import PageResult

# A page whose text layer has fewer characters than this is treated as a scan.
MIN_TEXT_LAYER_CHARS = 8
POINTS_PER_INCH = 72
LOW_RESOLUTION = 250
TARGET_DPI = 300
MAX_SCAN_DPI = 600


@dataclass(frozen=True)
class Plan:
    page_count: int
    text_pages: tuple[PageResult, ...]
    tasks: tuple[PageTask, ...]


def plan_document(
    source: Path, media_type: MediaType, workdir: Path, options: OcrOptions, runtime: Runtime
) -> Plan:
    """Inspect the document once and split its pages into text-layer results and OCR tasks."""
    if media_type is MediaType.PDF:
        return _plan_pdf(source, workdir, options, runtime)
    return _plan_raster(source, media_type, workdir, options, runtime)


def _plan_pdf(source: Path, workdir: Path, options: OcrOptions, runtime: Runtime) -> Plan:
    info = poppler.pdf_info(source, timeout=runtime.page_timeout, max_pages=runtime.max_pages)
    _check_page_count(info.pages, runtime)
    text_pages: list[PageResult] = []
    if not options.force_ocr:
        text_pages = _read_text_layer(source, runtime)
    answered = {page.number for page in text_pages}
    scans: dict[int, int] = {}
    if len(answered) < info.pages:
        scans = poppler.native_resolutions(source, sizes=info.sizes, timeout=runtime.page_timeout)
    tasks = []
    for number, size in enumerate(info.sizes, start=1):
        if number in answered:
            continue
        dpi = scan_dpi(scans[number]) if number in scans else options.dpi
        tasks.append(
            _task(
                source,
                MediaType.PDF,
                number,
                _capped_dpi(size, dpi, runtime),
                workdir,
                options,
                runtime,
            )
        )
    return Plan(page_count=info.pages, text_pages=tuple(text_pages), tasks=tuple(tasks))


def scan_dpi(native: int) -> int:
    """Render a scanned page at its own resolution: low ones raised to where Tesseract reads
    best, very high ones lowered to where it gains nothing more."""
    if native < LOW_RESOLUTION:
        return TARGET_DPI
    return min(native, MAX_SCAN_DPI)


def _read_text_layer(source: Path, runtime: Runtime) -> list[PageResult]:
    started = time.perf_counter()
    pages = poppler.text_layer(source, timeout=runtime.page_timeout)
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


def _capped_dpi(size: tuple[float, float], dpi: int, runtime: Runtime) -> int:
    """The requested resolution, lowered where the page would exceed the pixel limit."""
    if _pixels(size, dpi) <= runtime.max_page_pixels:
        return dpi
    scaled = math.floor(dpi * math.sqrt(runtime.max_page_pixels / _pixels(size, dpi)))
    # poppler rounds each side up, so step down until the rendered size really fits.
    while scaled > 1 and _pixels(size, scaled) > runtime.max_page_pixels:
        scaled -= 1
    return max(1, scaled)


def _pixels(size: tuple[float, float], dpi: int) -> int:
    width, height = (math.ceil(points / POINTS_PER_INCH * dpi) for points in size)
    return width * height


def _plan_raster(
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
    return Plan(page_count=frames, text_pages=(), tasks=tasks)


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
    )
