"""Thin wrappers over poppler: page count and sizes, the text layer, one page rendered."""

import math
import re
import secrets
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pdf2image
from pdf2image import exceptions as pdf_errors

from pipeline.errors import EncryptedPdf, InvalidPdf, PageTimeout
from pipeline.result import Line, Word

_XHTML = "{http://www.w3.org/1999/xhtml}"
_PAGE_SIZE = re.compile(r"^Page\s+(\d+) size$")
_PDFIMAGES_COLUMNS = 16
# An image shown over at least this share of the page makes the page a scan.
SCAN_COVERAGE = 0.5
_POINTS = re.compile(r"^([\d.]+) x ([\d.]+) pts")


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    sizes: tuple[tuple[float, float], ...]  # width, height in points, per page


@dataclass(frozen=True)
class TextPage:
    width: float
    height: float
    lines: tuple[Line, ...]


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


def text_layer(path: Path, *, timeout: float) -> list[TextPage]:
    """Every page's embedded text with word boxes (in points), from one pdftotext run."""
    try:
        run = subprocess.run(
            ["pdftotext", "-q", "-bbox-layout", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidPdf(f"reading the text layer took longer than {timeout:g} s") from exc
    if run.returncode != 0:
        raise InvalidPdf("the PDF's text layer could not be read")
    try:
        root = ET.fromstring(run.stdout)
    except ET.ParseError:
        return []
    return [_text_page(page) for page in root.iter(f"{_XHTML}page")]


def _text_page(page: ET.Element) -> TextPage:
    lines = []
    for line in page.iter(f"{_XHTML}line"):
        words = tuple(
            Word(text=word.text.strip(), confidence=100.0, bbox=_box(word))
            for word in line.iter(f"{_XHTML}word")
            if word.text and word.text.strip()
        )
        if words:
            lines.append(Line(bbox=_box(line), words=words))
    return TextPage(
        width=float(page.get("width", 0)), height=float(page.get("height", 0)), lines=tuple(lines)
    )


def _box(element: ET.Element) -> tuple[int, int, int, int]:
    return (
        round(float(element.get("xMin", 0))),
        round(float(element.get("yMin", 0))),
        round(float(element.get("xMax", 0))),
        round(float(element.get("yMax", 0))),
    )


def native_resolutions(
    path: Path, *, sizes: tuple[tuple[float, float], ...], timeout: float
) -> dict[int, int]:
    """Pages that are scans (one image covering most of the page) -> that image's resolution."""
    try:
        run = subprocess.run(
            ["pdfimages", "-list", "-l", str(len(sizes)), str(path)],
            capture_output=True,
            timeout=timeout,
            check=False,
            text=True,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return {}
    found: dict[int, int] = {}
    for row in run.stdout.splitlines()[2:]:
        cells = row.split()
        if len(cells) < _PDFIMAGES_COLUMNS or cells[2] != "image" or not cells[0].isdigit():
            continue
        page, width, height = int(cells[0]), int(cells[3]), int(cells[4])
        x_ppi, y_ppi = float(cells[12]), float(cells[13])
        if not 0 < page <= len(sizes) or x_ppi <= 0 or y_ppi <= 0:
            continue
        shown = (width / x_ppi * 72) * (height / y_ppi * 72)
        page_area = sizes[page - 1][0] * sizes[page - 1][1]
        if page_area and shown / page_area >= SCAN_COVERAGE:
            found[page] = max(found.get(page, 0), round(min(x_ppi, y_ppi)))
    return found


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
