"""The searchable PDF: the original pages, each OCRed page under an invisible text layer."""

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image, ImageOps
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import tessdata
from ocrflow.pipeline.result import PageResult, Word

FONT = NameObject("/FOcr")
GLYPH_WIDTH = 0.5  # the glyphless font's advance, in ems
RIGHT_ANGLE = math.pi / 2
_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""

Point = tuple[float, float]


def write_searchable_pdf(
    pages: Sequence[PageResult], source: Path, media_type: MediaType, path: Path
) -> None:
    """Lay each OCRed page's words, invisible, over the page they were read from."""
    searchable = SearchablePdf(source, media_type, path)
    for page in pages:
        searchable.add(page)
    searchable.close()


class SearchablePdf:
    """The searchable PDF built a page at a time (pages not added keep what they had: their
    own text layer, or, with `added_only`, are left out), then written once."""

    def __init__(
        self, source: Path, media_type: MediaType, path: Path, *, added_only: bool = False
    ) -> None:
        self._source, self._path, self._added_only = source, path, added_only
        self._added: set[int] = set()
        self._original = source if media_type is MediaType.PDF else _image_pdf(source, path)
        reader = PdfReader(self._original)
        if reader.is_encrypted:
            reader.decrypt("")
        self._writer = PdfWriter(clone_from=reader)
        self._font = _font(self._writer)

    def add(self, result: PageResult) -> None:
        self._added.add(result.number)
        if result.method != "ocr" or not result.lines:
            return
        pdf_page = self._writer.pages[result.number - 1]
        pdf_page.merge_page(_overlay(pdf_page, result, self._font))
        # Text placed word by word compresses about eightfold; stored plain, it made a
        # searchable PDF four times its scan's size.
        pdf_page.compress_content_streams()

    def close(self) -> None:
        if self._added_only:
            for index in reversed(range(len(self._writer.pages))):
                if index + 1 not in self._added:
                    self._writer.remove_page(index)
        with self._path.open("wb") as handle:
            self._writer.write(handle)
        if self._original != self._source:
            self._original.unlink()


def _image_pdf(source: Path, target: Path) -> Path:
    """An image source as a PDF of its pages, upright as they were read."""
    interim = target.with_suffix(".images.pdf")
    with Image.open(source) as image:
        frames = getattr(image, "n_frames", 1)
        dpi = image.info.get("dpi", (300, 300))[0] or 300
        first = ImageOps.exif_transpose(image) if frames == 1 else image
        first.save(interim, "PDF", save_all=frames > 1, resolution=float(dpi))
    return interim


def _overlay(pdf_page: PageObject, page: PageResult, font: IndirectObject) -> PageObject:
    overlay = PageObject.create_blank_page(
        width=float(pdf_page.mediabox.width), height=float(pdf_page.mediabox.height)
    )
    overlay.mediabox = pdf_page.mediabox
    overlay[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({FONT: font})}
    )
    content = ContentStream(None, None)
    content.set_data(b"".join(_text_layer(pdf_page, page)))
    overlay.replace_contents(content)
    return overlay


def _text_layer(pdf_page: PageObject, page: PageResult) -> Iterator[bytes]:
    to_pdf = Mapping(pdf_page, page)
    yield b"BT 3 Tr "
    for line in page.lines:
        for word in line.words:
            yield _place(word, to_pdf)
    yield b"ET\n"


def _place(word: Word, to_pdf: "Mapping") -> bytes:
    """One word, invisible, stretched over its box along its baseline."""
    left, top, right, bottom = word.bbox
    start, end, above = to_pdf((left, bottom)), to_pdf((right, bottom)), to_pdf((left, top))
    length = math.dist(start, end)
    size = max(math.dist(start, above), 1.0)
    # Words run along the page's axes, as a reader's text layer expects: a slant of a degree or
    # two (a skewed scan) would make text extraction split words and lines apart.
    angle = round(math.atan2(end[1] - start[1], end[0] - start[0]) / RIGHT_ANGLE) * RIGHT_ANGLE
    text = "".join(ch if ord(ch) <= 0xFFFF else "\ufffd" for ch in word.text)
    scale = 100 * length / max(len(text) * GLYPH_WIDTH * size, 0.01)
    cos, sin = math.cos(angle) * size, math.sin(angle) * size
    matrix = " ".join(f"{value:.3f}" for value in (cos, sin, -sin, cos, *start))
    return f"/FOcr 1 Tf {scale:.2f} Tz {matrix} Tm <{text.encode('utf-16-be').hex()}> Tj\n".encode()


class Mapping:
    """From a point in the turned image that was recognised to PDF user space on the page."""

    def __init__(self, pdf_page: PageObject, page: PageResult) -> None:
        box = pdf_page.mediabox
        self.left, self.bottom = float(box.left), float(box.bottom)
        self.right, self.top = float(box.right), float(box.top)
        self.rotate = int(pdf_page.get("/Rotate", 0) or 0) % 360
        shown = (box.height, box.width) if self.rotate in (90, 270) else (box.width, box.height)
        self.scale = (float(shown[0]) / page.source_size[0], float(shown[1]) / page.source_size[1])
        turned = page.source_size[::-1] if page.rotation in (90, 270) else page.source_size
        self.steps = [  # undo the deskew, then the orientation turn
            (page.skew, (page.width, page.height), turned),
            (float(page.rotation), turned, page.source_size),
        ]

    def __call__(self, point: Point) -> Point:
        for angle, size_after, size_before in self.steps:
            point = _unrotate(point, angle, size_after, size_before)
        u, v = point[0] * self.scale[0], point[1] * self.scale[1]
        return self._user_space(u, v)

    def _user_space(self, u: float, v: float) -> Point:
        """Shown-page coordinates (from the top left, in points) to user space, per /Rotate."""
        if self.rotate == 90:
            return self.left + v, self.bottom + u
        if self.rotate == 180:
            return self.right - u, self.bottom + v
        if self.rotate == 270:
            return self.right - v, self.top - u
        return self.left + u, self.top - v


def _unrotate(point: Point, angle: float, after: tuple[int, int], before: tuple[int, int]) -> Point:
    """Where a point of an image turned by Pillow's rotate(angle, expand=True) came from."""
    if not angle:
        return point
    theta = math.radians(angle)
    qx, qy = point[0] - after[0] / 2, point[1] - after[1] / 2
    dx = math.cos(theta) * qx - math.sin(theta) * qy
    dy = math.sin(theta) * qx + math.cos(theta) * qy
    return dx + before[0] / 2, dy + before[1] / 2


def _font(writer: PdfWriter) -> IndirectObject:
    """Tesseract's glyphless font: every code point is an invisible glyph of width 0.5 em.

    pypdf offers no public way to add a free-standing object, hence `_add_object`.
    """
    descriptor = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/FontDescriptor"),
            NameObject("/FontName"): NameObject("/GlyphLessFont"),
            NameObject("/Flags"): NumberObject(5),
            NameObject("/FontBBox"): ArrayObject([NumberObject(n) for n in (0, 0, 500, 1000)]),
            NameObject("/ItalicAngle"): NumberObject(0),
            NameObject("/Ascent"): NumberObject(1000),
            NameObject("/Descent"): NumberObject(0),
            NameObject("/CapHeight"): NumberObject(1000),
            NameObject("/StemV"): NumberObject(80),
        }
    )
    program = Path(tessdata().directory) / "pdf.ttf"
    if program.is_file():
        font_file = DecodedStreamObject()
        font_file.set_data(program.read_bytes())
        descriptor[NameObject("/FontFile2")] = writer._add_object(font_file)
    cid_font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/CIDFontType2"),
            NameObject("/BaseFont"): NameObject("/GlyphLessFont"),
            NameObject("/CIDToGIDMap"): NameObject("/Identity"),
            NameObject("/CIDSystemInfo"): DictionaryObject(
                {
                    NameObject("/Registry"): TextStringObject("Adobe"),
                    NameObject("/Ordering"): TextStringObject("Identity"),
                    NameObject("/Supplement"): NumberObject(0),
                }
            ),
            NameObject("/FontDescriptor"): writer._add_object(descriptor),
            NameObject("/DW"): FloatObject(GLYPH_WIDTH * 1000),
        }
    )
    to_unicode = DecodedStreamObject()
    to_unicode.set_data(_TO_UNICODE)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type0"),
            NameObject("/BaseFont"): NameObject("/GlyphLessFont"),
            NameObject("/Encoding"): NameObject("/Identity-H"),
            NameObject("/DescendantFonts"): ArrayObject([writer._add_object(cid_font)]),
            NameObject("/ToUnicode"): writer._add_object(to_unicode),
        }
    )
    return writer._add_object(font)
