"""Hostile documents, made on the spot: empty, truncated, corrupt, encrypted, thousands of
pages, decompression bombs (a huge PNG, a giant CCITT image in a PDF), polyglots.

Each generator writes into a directory and returns the path; none needs much memory to make
what would need gigabytes to decode."""

import io
import struct
import zlib
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter

from tests.corpus import write_image_pdf, write_png

LETTER = (612, 792)


def zero_bytes(directory: Path) -> Path:
    path = directory / "empty.pdf"
    path.write_bytes(b"")
    return path


def truncated_pdf(directory: Path) -> Path:
    whole = write_image_pdf(directory / "whole.pdf", [["A page cut in half"]]).read_bytes()
    path = directory / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def corrupt_pdf(directory: Path) -> Path:
    path = directory / "corrupt.pdf"
    noise = bytes((n * 7919 + 13) % 251 for n in range(64 * 1024))
    path.write_bytes(b"%PDF-1.7\n" + noise)
    return path


def encrypted_pdf(directory: Path) -> Path:
    plain = write_image_pdf(directory / "plain.pdf", [["Secret page"]])
    writer = PdfWriter(clone_from=plain)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    path = directory / "encrypted.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def many_pages_pdf(directory: Path, pages: int = 5000) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(*LETTER)
    path = directory / f"pages-{pages}.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def many_frames_tiff(directory: Path, frames: int = 2000) -> Path:
    frame = Image.new("L", (64, 64), 255)
    path = directory / f"frames-{frames}.tif"
    frame.save(path, save_all=True, append_images=[frame] * (frames - 1), compression="tiff_lzw")
    return path


def png_bomb(directory: Path, side: int = 100_000) -> Path:
    """A white 1-bit PNG of side x side pixels (10 gigapixels at the default), written row by
    row: about 1 MB on disk, 1.25 GB as a bitmap, 10 GB as the 8-bit image OCR would need."""
    row = b"\x00" + b"\xff" * (side // 8)  # filter byte, then white pixels
    packer = zlib.compressobj(9)
    body = io.BytesIO()
    for _ in range(side):
        body.write(packer.compress(row))
    body.write(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    path = directory / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body.getvalue())
        + _png_chunk(b"IEND", b"")
    )
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ccitt_giant_pdf(directory: Path, side: int = 200_000) -> Path:
    """A letter page showing one side x side CCITT G4 image (40 gigapixels at the default).
    In G4 a white row that matches the row above is a single bit, so the stream is tiny."""
    end_of_block = b"\x00\x10\x01"  # EOFB: two EOL codes, 000000000001 twice
    stream = b"\xff" * (side // 8) + end_of_block
    image = (
        f"<< /Type /XObject /Subtype /Image /Width {side} /Height {side} "
        f"/ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode "
        f"/DecodeParms << /K -1 /Columns {side} /Rows {side} /BlackIs1 false >> "
        f"/Length {len(stream)} >>"
    ).encode()
    content = f"q {LETTER[0]} 0 0 {LETTER[1]} 0 0 cm /Im0 Do Q".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {LETTER[0]} {LETTER[1]}] "
        "/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".encode(),
        image + b"\nstream\n" + stream + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    path = directory / "ccitt-giant.pdf"
    path.write_bytes(pdf_of(objects))
    return path


def pdf_of(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def polyglot_png_pdf(directory: Path) -> Path:
    """A PNG with a whole PDF appended: read as the PNG it starts as."""
    png = write_png(directory / "front.png", ["The PNG side"]).read_bytes()
    pdf = write_image_pdf(directory / "back.pdf", [["The PDF side"]]).read_bytes()
    path = directory / "polyglot.png"
    path.write_bytes(png + pdf)
    return path


def html_with_pdf_header(directory: Path) -> Path:
    """HTML that carries `%PDF-` in its first kilobyte, as PDF readers allow: read as a PDF
    (and found to be no valid one), never rendered as HTML."""
    path = directory / "page.html"
    path.write_bytes(b"<html><script>alert(1)</script>%PDF-1.7\n</html>\n" * 4)
    return path


def zip_file(directory: Path) -> Path:
    path = directory / "archive.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    return path


def huge_page_pdf(directory: Path) -> Path:
    """One page 200 inches square (the largest a PDF allows): rendered at a lower resolution
    so it stays under the pixel limit."""
    writer = PdfWriter()
    writer.add_blank_page(14_400, 14_400)
    path = directory / "huge-page.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path
