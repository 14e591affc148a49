"""One page through recognition: the function the process pool runs."""

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from pipeline import poppler, tesseract
from pipeline.errors import InvalidImage, PageTooLarge, PipelineError
from pipeline.media import MediaType
from pipeline.options import OcrOptions
from pipeline.result import PageError, PageResult

DEFAULT_IMAGE_DPI = 300
_PLAIN_MODES = frozenset({"1", "L", "RGB"})


@dataclass(frozen=True)
class PageTask:
    """Everything a pool process needs for one page: paths and primitives only."""

    source: Path
    media_type: MediaType
    number: int
    dpi: int
    workdir: Path
    options: OcrOptions
    timeout: float
    max_pixels: int


def process_page(task: PageTask) -> PageResult:
    """Recognise one page; a page-level failure comes back as a result carrying its error."""
    started = time.perf_counter()
    image: Path | None = None
    try:
        image, dpi = prepare_image(task)
        with Image.open(image) as opened:
            width, height = opened.size
        found = tesseract.recognize(
            image,
            out_base=task.workdir / f"ocr-{task.number:05d}",
            lang=task.options.tesseract_lang,
            psm=task.options.psm,
            dpi=dpi,
            timeout=task.timeout,
        )
    except PipelineError as exc:
        return PageResult(
            number=task.number,
            method="ocr",
            width=0,
            height=0,
            dpi=task.dpi,
            text="",
            seconds=time.perf_counter() - started,
            error=PageError(exc.code, exc.message),
        )
    finally:
        _remove_scratch(task, image)
    return PageResult(
        number=task.number,
        method="ocr",
        width=width,
        height=height,
        dpi=dpi,
        text=found.text,
        lines=found.lines,
        seconds=time.perf_counter() - started,
    )


def prepare_image(task: PageTask) -> tuple[Path, int]:
    """The page as an image file Tesseract reads well, and its resolution."""
    if task.media_type is MediaType.PDF:
        rendered = poppler.render_page(
            task.source,
            number=task.number,
            dpi=task.dpi,
            out_dir=task.workdir,
            timeout=task.timeout,
        )
        return rendered, task.dpi
    return _prepare_raster(task)


def _prepare_raster(task: PageTask) -> tuple[Path, int]:
    with open_image(task.source) as image:
        image.seek(task.number - 1)
        check_pixels(image.size, task.max_pixels, task.number)
        dpi = image_dpi(image)
        exif_turned = image.getexif().get(0x0112, 1) != 1
        if task.media_type is not MediaType.TIFF and image.mode in _PLAIN_MODES and not exif_turned:
            return task.source, dpi
        target = task.workdir / f"page-{task.number:05d}.png"
        try:
            upright = ImageOps.exif_transpose(image)
            upright.convert("L").save(target, dpi=(dpi, dpi))
        except (OSError, ValueError) as exc:
            raise InvalidImage(f"page {task.number} could not be decoded") from exc
        return target, dpi


def open_image(path: Path) -> Image.Image:
    """Open an image lazily (header only); the pixel count is checked by the caller."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as exc:
            raise PageTooLarge("the image has too many pixels") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidImage("the image could not be read: it is damaged or truncated") from exc


def check_pixels(size: tuple[int, int], max_pixels: int, number: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidImage(f"page {number} has no pixels")
    if width * height > max_pixels:
        raise PageTooLarge(
            f"page {number} is {width}x{height} pixels, more than the limit of {max_pixels}"
        )


def image_dpi(image: Image.Image) -> int:
    dpi = image.info.get("dpi")
    if isinstance(dpi, tuple) and dpi and 70 <= float(dpi[0]) <= 1200:
        return round(float(dpi[0]))
    return DEFAULT_IMAGE_DPI


def _remove_scratch(task: PageTask, image: Path | None) -> None:
    scratch = [task.workdir / f"ocr-{task.number:05d}{ext}" for ext in (".txt", ".tsv")]
    if image is not None and image != task.source:
        scratch.append(image)
    for path in scratch:
        path.unlink(missing_ok=True)
