"""One page through recognition: the function the process pool runs."""

import logging
import secrets
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from ocrflow.pipeline import poppler
from ocrflow.pipeline.engines import Engine, get_engine
from ocrflow.pipeline.errors import (
    EngineFailure,
    InvalidImage,
    InvalidPdf,
    PageOutOfMemory,
    PageTooLarge,
    PipelineError,
)
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import Engine as EngineName
from ocrflow.pipeline.options import OcrOptions
from ocrflow.pipeline.resolution import MAX_SIDE, capped_dpi, scan_dpi
from ocrflow.pipeline.result import Line, PageError, PageResult, Word

log = logging.getLogger(__name__)

DEFAULT_IMAGE_DPI = 300
# Degrees. Below this Tesseract's own line finding copes; above it, turning the page level
# first costs ~0.1 s and saves misreadings (on short pages skewed 3 degrees, for instance).
MIN_SKEW = 1.0
# Tesseract's LSTM reads every text line scaled to its network's input height, a few dozen
# pixels, so larger text only costs time in the steps before it (thresholding, page layout,
# cutting out the lines). A page whose lines are further apart than TARGET_PITCH pixels is
# scaled down to that before recognition, and its boxes scaled back up: on the bench corpus
# 10-35% faster at every text size, with a lower error rate (the smoothing drops scan noise).
TARGET_PITCH = 36.0
MIN_SCALE = 0.4  # at most this far, whatever the measured pitch
# Images inside a PDF page are downscaled while rendering; up to this many times the page pixel
# limit they are a fine scan, past it a decompression bomb that would take minutes to decode.
EMBEDDED_PIXELS_FACTOR = 4


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
    engine: EngineName = "auto"
    page_size: tuple[float, float] = (0.0, 0.0)  # PDF pages: width, height in points
    # Degrees to turn the page, when already known (`page_orientation` found them); None: find
    # them here, if options.rotate says to.
    rotation: int | None = None
    preview: bool = False  # keep a small picture of the page as it came (`preview_path`)


PREVIEW_WIDTH = 900  # pixels: what the dashboard shows beside a page's text
PREVIEW_QUALITY = 70  # JPEG: a dense scanned page in ~100 KB, its words still legible


def preview_path(workdir: Path, number: int) -> Path:
    return workdir / f"preview-{number:05d}.jpg"


def kept_previews(workdir: Path) -> list[tuple[int, Path]]:
    """The pictures `save_preview` kept in `workdir`, by page number."""
    return [(int(path.stem.split("-")[1]), path) for path in sorted(workdir.glob("preview-*.jpg"))]


def save_preview(image: Image.Image, path: Path) -> None:
    """The page as it came (before it is turned or levelled), `PREVIEW_WIDTH` wide at most."""
    scale = min(1.0, PREVIEW_WIDTH / image.width, PREVIEW_WIDTH * 4 / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.resize(size, Image.Resampling.BILINEAR) if scale < 1 else image
    small.convert("L").save(path, "JPEG", quality=PREVIEW_QUALITY)


# A page image narrower or lower than this holds nothing to read.
MIN_SIDE = 2


def process_page(task: PageTask) -> PageResult:
    """Recognise one page; a page-level failure comes back as a result carrying its error."""
    started = time.perf_counter()
    try:
        return _recognize(task, get_engine(task.engine), started)
    except PipelineError as exc:
        return failed_page(task, exc, time.perf_counter() - started)
    except MemoryError:
        # Over the pool process's memory limit: this page fails, the process lives on.
        message = f"page {task.number} needs more memory than the configured limit"
        return failed_page(task, PageOutOfMemory(message), time.perf_counter() - started)
    except Exception as exc:
        # Tesseract and Leptonica report failures (an allocation over the memory limit among
        # them) as bare RuntimeErrors: the page fails with what they said, the document goes on.
        log.warning("page %d failed: %r", task.number, exc)
        failure = EngineFailure(f"page {task.number} could not be read: {exc}")
        return failed_page(task, failure, time.perf_counter() - started)


def page_orientation(task: PageTask) -> int | None:
    """Only the degrees to turn the page upright (what `process_page` would find), or None when
    the page cannot be read: `process_page` then says why."""
    try:
        image, _ = load_page(task)
        if min(image.size) < MIN_SIDE:
            return None
        scratch = task.workdir / f"osd-{task.number:05d}-{secrets.token_hex(4)}"
        return get_engine(task.engine).orientation(image, timeout=task.timeout, scratch=scratch)
    except Exception:  # the page's own run reports any failure, with its code
        return None


def warm_up(engine: EngineName, lang: str, hold: float = 0.2) -> None:
    """Load the engine and its models in this process (a blank page read and turned), so the
    first real page does not pay for it; then hold the process for `hold` seconds, so that
    warm-ups sent together land on different processes."""
    blank = Image.new("L", (200, 200), 255)
    found = get_engine(engine)
    with tempfile.TemporaryDirectory(prefix="ocrflow-warm-") as directory:
        scratch = Path(directory) / "blank"
        found.orientation(blank, timeout=30, scratch=scratch)
        found.recognize(blank, lang=lang, psm=3, dpi=300, timeout=30, scratch=scratch)
    time.sleep(hold)


def failed_page(task: PageTask, exc: PipelineError, seconds: float = 0.0) -> PageResult:
    return PageResult(
        number=task.number,
        method="ocr",
        width=0,
        height=0,
        dpi=task.dpi,
        text="",
        seconds=seconds,
        error=PageError(exc.code, exc.message),
    )


def _recognize(task: PageTask, engine: Engine, started: float) -> PageResult:
    image, dpi = load_page(task)
    if min(image.size) < MIN_SIDE:  # nothing to read; Tesseract would call it its own fault
        kind = InvalidPdf if task.media_type is MediaType.PDF else InvalidImage
        message = f"page {task.number} has no area ({image.width} x {image.height} pixels)"
        raise kind(f"{message}: it is damaged (a page tree that loops, a box of no size)")
    source_size = image.size
    if task.preview:
        save_preview(image, preview_path(task.workdir, task.number))
    # Unique per call: a retried or duplicated page may run beside another in the same workdir.
    scratch = task.workdir / f"ocr-{task.number:05d}-{secrets.token_hex(4)}"
    rotation = task.rotation or 0
    if task.rotation is None and task.options.rotate:
        rotation = engine.orientation(image, timeout=task.timeout, scratch=scratch)
    if rotation:
        image = image.rotate(rotation, expand=True)
    # numpy is imported where pages are read (a pool process), not by every command.
    from ocrflow.pipeline.skew import measure_rows

    rows = measure_rows(image)
    skew = rows.skew if task.options.deskew and abs(rows.skew) >= MIN_SKEW else 0.0
    if skew:
        image = image.rotate(skew, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    scale = text_scale(rows.pitch) if task.options.rescale else 1.0
    read = image
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        read = image.resize(size, Image.Resampling.BILINEAR)
    if max(read.size) > MAX_SIDE:
        raise PageTooLarge(
            f"page {task.number} is {read.width}x{read.height} pixels: Tesseract reads pages up "
            f"to {MAX_SIDE} pixels a side"
        )
    found = engine.recognize(
        read,
        lang=task.options.tesseract_lang,
        psm=task.options.psm,
        dpi=max(1, round(dpi * scale)),
        timeout=task.timeout,
        scratch=scratch,
    )
    lines = found.lines
    if read is not image:
        lines = scaled_lines(lines, image.width / read.width, image.height / read.height)
    return PageResult(
        number=task.number,
        method="ocr",
        width=image.width,
        height=image.height,
        dpi=dpi,
        text=found.text,
        lines=lines,
        seconds=time.perf_counter() - started,
        rotation=rotation,
        skew=skew,
        source_size=source_size,
    )


def text_scale(pitch: float | None) -> float:
    """How far to scale a page down before recognition, from the distance between its lines."""
    if pitch is None or pitch <= TARGET_PITCH:
        return 1.0
    return max(MIN_SCALE, TARGET_PITCH / pitch)


def scaled_lines(lines: tuple[Line, ...], fx: float, fy: float) -> tuple[Line, ...]:
    """Boxes found on a scaled page, on the page itself."""

    def box(b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        return (round(b[0] * fx), round(b[1] * fy), round(b[2] * fx), round(b[3] * fy))

    return tuple(
        Line(box(line.bbox), tuple(Word(w.text, w.confidence, box(w.bbox)) for w in line.words))
        for line in lines
    )


def load_page(task: PageTask) -> tuple[Image.Image, int]:
    """The page as a grayscale image in memory, and its resolution."""
    if task.media_type is MediaType.PDF:
        dpi = render_dpi(task)
        rendered = poppler.render_page(
            task.source, number=task.number, dpi=dpi, out_dir=task.workdir, timeout=task.timeout
        )
        try:
            with Image.open(rendered) as image:
                return image.convert("L"), dpi
        finally:
            rendered.unlink(missing_ok=True)
    return _load_raster(task)


def render_dpi(task: PageTask) -> int:
    """A scanned page renders at its own resolution, any other at the requested one. A page
    holding an image too large to decode (a decompression bomb) is refused before rendering."""
    images = poppler.page_images(
        task.source, number=task.number, size=task.page_size, timeout=task.timeout
    )
    width, height = images.largest
    if width * height > task.max_pixels * EMBEDDED_PIXELS_FACTOR:
        raise PageTooLarge(
            f"page {task.number} holds a {width}x{height} image, more than "
            f"{EMBEDDED_PIXELS_FACTOR}x the limit of {task.max_pixels} pixels"
        )
    native = images.native_dpi
    dpi = scan_dpi(native) if native else task.dpi
    return capped_dpi(task.page_size, dpi, task.max_pixels)


def _load_raster(task: PageTask) -> tuple[Image.Image, int]:
    with open_image(task.source) as image:
        try:
            image.seek(task.number - 1)
            check_pixels(image.size, task.max_pixels, task.number)
            upright = ImageOps.exif_transpose(image) if task.number == 1 else image
            return upright.convert("L"), image_dpi(image)
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidImage(f"page {task.number} could not be decoded") from exc


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
