"""A page as a small picture, for people to look at beside its text (the dashboard)."""

import io
import subprocess
from pathlib import Path

from PIL import ImageOps

from ocrflow.pipeline.errors import InvalidImage, InvalidPdf, PageTimeout
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.page import check_pixels, open_image


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
    small.thumbnail((width, width * 4))
    out = io.BytesIO()
    small.save(out, "PNG", optimize=False)
    return out.getvalue()


def _pdf_page(source: Path, number: int, width: int, timeout: float) -> bytes:
    command = ["pdftoppm", "-f", str(number), "-l", str(number), "-gray", "-png"]
    command += ["-scale-to-x", str(width), "-scale-to-y", "-1", str(source)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PageTimeout(f"drawing page {number} took longer than {timeout:g} s") from exc
    if done.returncode != 0 or not done.stdout:
        raise InvalidPdf(f"page {number} could not be drawn")
    return done.stdout
