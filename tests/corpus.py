"""Documents of known text, rendered on the fly so tests and benchmarks can check what OCR read."""

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DPI = 300


def page_image(lines: Sequence[str], *, font_size: int = 40, width: int = 1600) -> Image.Image:
    """Black text on a white grayscale page, one string per line."""
    font = ImageFont.load_default(size=font_size)
    line_height = int(font_size * 1.6)
    margin = font_size * 2
    image = Image.new("L", (width, margin * 2 + line_height * len(lines)), color=255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((margin, margin + index * line_height), line, fill=0, font=font)
    return image


def write_png(path: Path, lines: Sequence[str], **kwargs: int) -> Path:
    page_image(lines, **kwargs).save(path, dpi=(DPI, DPI))
    return path


def write_image_pdf(
    path: Path, pages: Sequence[Sequence[str]], *, dpi: int = DPI, **kwargs: int
) -> Path:
    """A PDF of scanned-looking pages: images only, no text layer, scanned at `dpi`."""
    images = [page_image(lines, **kwargs) for lines in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def write_searchable_pdf(path: Path, pages: Sequence[Sequence[str]], **kwargs: int) -> Path:
    """A PDF whose pages carry a text layer (Tesseract's own PDF renderer makes it)."""
    workdir = path.parent / f".{path.stem}-pages"
    workdir.mkdir(exist_ok=True)
    images = [write_png(workdir / f"{n:03d}.png", lines, **kwargs) for n, lines in enumerate(pages)]
    listing = workdir / "pages.txt"
    listing.write_text("\n".join(str(image) for image in images) + "\n")
    subprocess.run(
        ["tesseract", str(listing), str(path.with_suffix("")), "-l", "eng", "pdf"],
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    return path
