"""Thin wrappers over poppler: page count and sizes, the text layer, one page rendered."""

import math
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import pdf2image
from pdf2image import exceptions as pdf_errors

from ocrflow.pipeline.errors import EncryptedPdf, InvalidPdf, PageTimeout, TextLayerTooLarge
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


# pdftotext writes about 45 bytes a word: a page's rows past this many bytes a word allowed
# are a glyph bomb, stopped before they are read into memory.
_TSV_BYTES_PER_WORD = 64
_READ = 256 * 1024
_PAGE_ROW = b"\n1\t"


def text_layer(
    path: Path, *, first: int, last: int, timeout: float, max_page_words: int
) -> list[TextPage]:
    """Embedded text with word boxes (in points) of pages first..last, from one pdftotext run.

    Read as it is written: a page with more text than `max_page_words` allow stops the run at
    once (`TextLayerTooLarge`, naming the page), whatever the document holds."""
    command = ["pdftotext", "-q", "-tsv", "-enc", "UTF-8", "-f", str(first), "-l", str(last)]
    limit = max_page_words * _TSV_BYTES_PER_WORD
    expired = threading.Event()
    with subprocess.Popen(
        [*command, str(path), "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as run:

        def expire() -> None:
            expired.set()
            run.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            data = _read_pages(cast(IO[bytes], run.stdout), first, limit, max_page_words)
            status = run.wait()
        finally:
            watchdog.cancel()
            run.kill()  # stops it early when a page was too large; a no-op once it has ended
    if expired.is_set():
        raise InvalidPdf(f"reading the text layer took longer than {timeout:g} s")
    if status != 0:
        raise InvalidPdf("the PDF's text layer could not be read")
    # The TSV form holds the same pages, lines and words as -bbox-layout's XHTML, unescaped,
    # in half the bytes, and reads in half the time: it matters on documents of thousands of
    # pages.
    pages = parse_tsv(data)
    for number, page in enumerate(pages, start=first):
        if sum(len(line.words) for line in page.lines) > max_page_words:
            raise _too_large(number, max_page_words)
    return pages


def _read_pages(stream: IO[bytes], first: int, limit: int, max_page_words: int) -> bytes:
    """All of `stream`, unless one page's rows pass `limit` bytes."""
    chunks, page, page_bytes, tail = [], first - 1, 0, b""
    while chunk := stream.read(_READ):
        chunks.append(chunk)
        pieces = (tail + chunk).split(_PAGE_ROW)
        page_bytes += len(pieces[0]) - len(tail)
        for piece in pieces[1:]:  # each starts a page: the one before it is complete
            if page_bytes > limit:
                raise _too_large(max(page, first), max_page_words)
            page, page_bytes = page + 1, len(piece) + len(_PAGE_ROW)
        if page_bytes > limit:
            raise _too_large(max(page, first), max_page_words)
        tail = chunk[-(len(_PAGE_ROW) - 1) :]
    return b"".join(chunks)


def _too_large(page: int, max_page_words: int) -> TextLayerTooLarge:
    return TextLayerTooLarge(
        f"page {page}'s text layer holds more than {max_page_words} words' worth of text"
    )


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
