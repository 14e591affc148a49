"""Media types, recognised from a file's first bytes rather than from its name or headers."""

from enum import StrEnum

from ocrflow.pipeline.errors import UnsupportedMediaType

SNIFF_BYTES = 1024


class MediaType(StrEnum):
    PDF = "application/pdf"
    PNG = "image/png"
    JPEG = "image/jpeg"
    TIFF = "image/tiff"

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]


_EXTENSIONS = {
    MediaType.PDF: ".pdf",
    MediaType.PNG: ".png",
    MediaType.JPEG: ".jpg",
    MediaType.TIFF: ".tif",
}

_SIGNATURES: tuple[tuple[bytes, MediaType], ...] = (
    (b"\x89PNG\r\n\x1a\n", MediaType.PNG),
    (b"\xff\xd8\xff", MediaType.JPEG),
    (b"II*\x00", MediaType.TIFF),
    (b"MM\x00*", MediaType.TIFF),
)


def sniff(head: bytes) -> MediaType:
    """Tell the media type from the first bytes of a file (at least SNIFF_BYTES when available)."""
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    # PDF readers accept a header anywhere in the first kilobyte, so must we.
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return MediaType.PDF
    if not head:
        raise UnsupportedMediaType("the file is empty")
    raise UnsupportedMediaType("not a PDF, PNG, JPEG or TIFF file")
