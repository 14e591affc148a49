"""Thin wrappers over poppler: page count and sizes, the text layer, one page rendered."""

import math
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pdf2image
from pdf2image import exceptions as pdf_errors

from ocrflow.pipeline.errors import EncryptedPdf, InvalidPdf, PageTimeout
from ocrflow.pipeline.tsv import TextPage, parse_tsv

_PAGE_SIZE = re.compile(r"^Page\s+(\d+) size$")
_PDFIMAGES_COLUMNS = 16
# An image shown over at least this share of the page makes the page a scan.
SCAN_COVERAGE = 0.5
_POINTS = re.compile(r"^([\d.]+) x ([\d.]+) pts")


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    sizes: tuple[tuple[float, float], ...]  # width, height in points, per page


def pdf_info(path: Path, *, timeout: float, max_pages: int) -> PdfInfo:
    """Page count, and the sizes of the first `max_pages` pages, from one pdfinfo run."""
    try:
        info = pdf2image.pdfinfo_from_path(
            str(path), timeout=math.ceil(timeout), first_page=1, last_page=max_pages
        )
    except pdf_errors.PDFPageCountError as exc:
        if "password" in str(exc).lower():
            raise EncryptedPdf("the PDF is encrypted with a password") from exc
        raise InvalidPdf("the PDF could not be read: it is damaged or not a PDF") from exc
    except pdf_errors.PDFPopplerTimeoutError as exc:
        raise InvalidPdf(f"reading the PDF took longer than {timeout:g} s") from exc
    pages = int(info.get("Pages", 0))
    if pages < 1:
        raise InvalidPdf("the PDF has no pages")
    sizes = dict(_page_sizes(info))
    default = sizes.get(1, (612.0, 792.0))
    known = range(1, min(pages, max_pages) + 1)
    return PdfInfo(pages=pages, sizes=tuple(sizes.get(n, default) for n in known))


def _page_sizes(info: dict[str, object]) -> list[tuple[int, tuple[float, float]]]:
    sizes = []
    for key, value in info.items():
        page, points = _PAGE_SIZE.match(key), _POINTS.match(str(value))
        if page and points:
            sizes.append((int(page[1]), (float(points[1]), float(points[2]))))
    return sizes


def text_layer(path: Path, *, first: int, last: int, timeout: float) -> list[TextPage]:
    """Embedded text with word boxes (in points) of pages first..last, from one pdftotext run."""
    command = ["pdftotext", "-q", "-tsv", "-enc", "UTF-8", "-f", str(first), "-l", str(last)]
    try:
        run = subprocess.run([*command, str(path), "-"], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise InvalidPdf(f"reading the text layer took longer than {timeout:g} s") from exc
    if run.returncode != 0:
        raise InvalidPdf("the PDF's text layer could not be read")
    # The TSV form holds the same pages, lines and words as -bbox-layout's XHTML, unescaped,
    # in half the bytes, and reads in half the time: it matters on documents of thousands of
    # pages.
    return parse_tsv(run.stdout)


@dataclass(frozen=True)
class PageImages:
    native_dpi: int | None  # of the image covering most of the page, if it is a scan
    largest: tuple[int, int] = (0, 0)  # width, height of the largest image on the page


def page_images(
    path: Path, *, number: int, size: tuple[float, float], timeout: float
) -> PageImages:
    """What the images on page `number` are: its scan's resolution, and the largest one."""
    try:
        run = subprocess.run(
            ["pdfimages", "-list", "-f", str(number), "-l", str(number), str(path)],
            capture_output=True,
            timeout=timeout,
            check=False,
            text=True,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return PageImages(None)
    found, largest = None, (0, 0)
    for row in run.stdout.splitlines()[2:]:
        cells = row.split()
        if len(cells) < _PDFIMAGES_COLUMNS or cells[2] != "image":
            continue
        width, height, x_ppi, y_ppi = (
            int(cells[3]),
            int(cells[4]),
            float(cells[12]),
            float(cells[13]),
        )
        if width * height > largest[0] * largest[1]:
            largest = (width, height)
        if x_ppi <= 0 or y_ppi <= 0:
            continue
        shown = (width / x_ppi * 72) * (height / y_ppi * 72)
        if size[0] * size[1] and shown / (size[0] * size[1]) >= SCAN_COVERAGE:
            found = max(found or 0, round(min(x_ppi, y_ppi)))
    return PageImages(found, largest)


def render_page(path: Path, *, number: int, dpi: int, out_dir: Path, timeout: float) -> Path:
    """Render one page to a grayscale image file in `out_dir`, never loading the others."""
    try:
        rendered = pdf2image.convert_from_path(
            str(path),
            dpi=dpi,
            first_page=number,
            last_page=number,
            output_folder=str(out_dir),
            output_file=f"page-{number:05d}-{secrets.token_hex(4)}",
            single_file=True,
            # Raw PGM: poppler's PNG encoder costs twenty times the rendering itself.
            fmt="ppm",
            grayscale=True,
            paths_only=True,
            timeout=math.ceil(timeout),
        )
    except pdf_errors.PDFPopplerTimeoutError as exc:
        raise PageTimeout(f"rendering page {number} took longer than {timeout:g} s") from exc
    except (pdf_errors.PDFSyntaxError, pdf_errors.PDFPageCountError) as exc:
        raise InvalidPdf(f"page {number} could not be rendered") from exc
    if not rendered:
        raise InvalidPdf(f"page {number} could not be rendered")
    # With paths_only, pdf2image returns file paths rather than images.
    return Path(cast(list[str], rendered)[0])
