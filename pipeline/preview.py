"""A page as a small picture, for people to look at beside its text (the dashboard), drawn from
the document when asked (the worker keeps one of each page it reads: `page.save_preview`)."""

import io
import math
import subprocess
import sys
from pathlib import Path

from PIL import ImageOps

from ocrflow.pipeline.errors import InvalidImage, InvalidPdf, PageTimeout, PipelineError
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.page import check_pixels, open_image
from ocrflow.pipeline.poppler import pdf_info

MAX_PICTURE_PIXELS = 8_000_000  # a picture drawn on request holds at most this many


def preview(
    source: Path, media_type: MediaType, *, number: int, width: int, max_pixels: int, timeout: float
) -> bytes:
    """Page `number` of the document as a PNG `width` pixels wide (grayscale)."""
    if media_type is MediaType.PDF:
        return _pdf_page(source, number, width, timeout)
    with open_image(source) as image:
        try:
            image.seek(number - 1)
            check_pixels(image.size, max_pixels, number)
            upright = ImageOps.exif_transpose(image) if number == 1 else image
            small = upright.convert("L")
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidImage(f"page {number} could not be decoded") from exc
    small.thumbnail((width, min(width * 4, MAX_PICTURE_PIXELS // width)))
    out = io.BytesIO()
    small.save(out, "PNG", optimize=False)
    return out.getvalue()


def _pdf_page(source: Path, number: int, width: int, timeout: float) -> bytes:
    """The page `width` pixels wide, unless that would draw more than `MAX_PICTURE_PIXELS` (a
    strip 200 inches tall): then as large as fits, its shape kept."""
    sizes = pdf_info(source, timeout=timeout, max_pages=number).sizes
    points_wide, points_high = sizes[number - 1] if number <= len(sizes) else (612.0, 792.0)
    high = width * points_high / max(points_wide, 1.0)
    shrink = min(1.0, math.sqrt(MAX_PICTURE_PIXELS / max(width * high, 1.0)))
    size = (max(1, int(width * shrink)), max(1, int(high * shrink)))
    command = ["pdftoppm", "-f", str(number), "-l", str(number), "-gray", "-png"]
    command += ["-scale-to-x", str(size[0]), "-scale-to-y", str(size[1]), str(source)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PageTimeout(f"drawing page {number} took longer than {timeout:g} s") from exc
    if done.returncode != 0 or not done.stdout:
        raise InvalidPdf(f"page {number} could not be drawn")
    return done.stdout


def main(argv: list[str]) -> int:
    """`python -m ocrflow.pipeline.preview SOURCE MEDIA_TYPE PAGE WIDTH MAX_PIXELS TIMEOUT`: the
    PNG on standard output, or why not on standard error (exit 3). The ingress runs it as a
    process of its own, under a memory limit, so no document can grow the ingress."""
    source, media_type, number, width, max_pixels, timeout = argv
    try:
        png = preview(
            Path(source),
            MediaType(media_type),
            number=int(number),
            width=int(width),
            max_pixels=int(max_pixels),
            timeout=float(timeout),
        )
    except PipelineError as exc:
        print(exc.message, file=sys.stderr)
        return 3
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
