"""Documents of known text, rendered on the fly so tests and benchmarks can check what OCR read.

Simple pages (`page_image`) for tests; full scan-like pages (`scan_page`) with varied fonts,
sizes, columns, rotation, skew and noise for the benchmark, as PNGs, image-only PDFs and PDFs
with a text layer.
"""

import os
import random
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 300
LETTER = (2550, 3300)  # 8.5 x 11 in at 300 dpi
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/truetype/liberation2"),
)
FONT_NAMES = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSans-Regular.ttf",
)
_WORD_LIST = """the of and to in is was for that with as on by at from his an were are which this be
or has had not first one their its new after but who they have her she two been other when
there all during into school time may years more most only over city some world would where
later up such used many can state about national out known university united then made also
between through company both part three under including well game however series film year
several since while each total march season members before team government village many number
department district within long early people third november york public second july village
history family april began around report river market invoice account payment balance review
quarterly figures customer delivery order shipping address contract section paragraph clause
agreement signature witness evidence analysis result measure sample method average increase"""
WORDS = _WORD_LIST.split()


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


@dataclass(frozen=True)
class Style:
    rotation: int = 0  # degrees counter-clockwise the scan is turned
    skew: float = 0.0
    columns: int = 1
    font_size: int = 36
    font: str = ""  # a file name from FONT_NAMES; "" for Pillow's own font
    noise: bool = False


@dataclass(frozen=True)
class ScanPage:
    image: Image.Image
    truth: str  # the text, in reading order
    words: tuple[tuple[str, tuple[int, int, int, int]], ...]  # word, box on the upright page


def available_fonts() -> list[str]:
    return [name for name in FONT_NAMES if _font_path(name)]


def _font_path(name: str) -> Path | None:
    return next((d / name for d in FONT_DIRS if (d / name).is_file()), None)


def _font(style: Style) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_path(style.font) if style.font else None
    if path is None:
        return ImageFont.load_default(size=style.font_size)
    return ImageFont.truetype(str(path), style.font_size)


def scan_page(seed: int, style: Style) -> ScanPage:
    """A letter page of running text, laid out in columns, then scanned: turned, skewed, noisy."""
    rng = random.Random(seed)
    font = _font(style)
    page = Image.new("L", LETTER, 255)
    draw = ImageDraw.Draw(page)
    margin, gutter = 200, 120
    column_width = (LETTER[0] - 2 * margin - gutter * (style.columns - 1)) // style.columns
    line_height = int(style.font_size * 1.5)
    lines_per_column = (LETTER[1] - 2 * margin) // line_height
    truth: list[str] = []
    boxes: list[tuple[str, tuple[int, int, int, int]]] = []
    for column in range(style.columns):
        left = margin + column * (column_width + gutter)
        for row in range(lines_per_column):
            words = _line_words(rng, font, column_width)
            top = margin + row * line_height
            x = left
            for word in words:
                draw.text((x, top), word, fill=0, font=font)
                x0, y0, x1, y1 = draw.textbbox((x, top), word, font=font)
                boxes.append((word, (int(x0), int(y0), int(x1), int(y1))))
                x += int(font.getlength(word + " "))
            truth.append(" ".join(words))
    return ScanPage(image=_scan(page, style, rng), truth="\n".join(truth), words=tuple(boxes))


def _line_words(
    rng: random.Random, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int
) -> list[str]:
    words: list[str] = []
    while True:
        word = rng.choice(WORDS)
        if rng.random() < 0.08:
            word = word.capitalize()
        if rng.random() < 0.05:
            word = str(rng.randint(1, 9999))
        if font.getlength(" ".join([*words, word])) > width:
            return words
        words.append(word)


def _scan(page: Image.Image, style: Style, rng: random.Random) -> Image.Image:
    if style.noise:
        page = page.filter(ImageFilter.GaussianBlur(0.8))
        pixels = page.load()
        assert pixels is not None
        for _ in range(page.width * page.height // 400):
            x, y = rng.randrange(page.width), rng.randrange(page.height)
            pixels[x, y] = rng.choice((0, 255))
    if style.skew:
        page = page.rotate(
            style.skew, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255
        )
    if style.rotation:
        page = page.rotate(style.rotation, expand=True)
    return page
