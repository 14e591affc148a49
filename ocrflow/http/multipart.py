"""Reading a multipart upload: the file streamed into memory or a spool file under a size limit,
and its other fields, each under a limit and a pace."""

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_DISPOSITION
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename
from aiohttp.multipart import parse_content_disposition as _parse_content_disposition

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs.sources import Incoming
from ocrflow.pipeline.media import MediaType
from ocrflow.storage.backend import disk_errors

CHUNK = 256 * 1024
# An upload up to this size stays in memory until storage takes it: most single-page scans, which
# then never touch the ingress's disk (a spool file's create costs as much as the rest of a small
# submission). Memory held is bounded by this times the uploads in flight.
MEMORY_BYTES = 512 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64
# `form-data; name="…"; filename="…"`, no backslash, quote or semicolon inside the values.
_PLAIN_DISPOSITION = re.compile(r'form-data((?:[ \t]*;[ \t]*(?:name|filename)="[^"\\;]*")*)[ \t]*')
_DISPOSITION_PARAM = re.compile(r'(name|filename)="([^"\\;]*)"')


@dataclass
class Upload:
    content: Path | bytes  # a spool file (the caller removes it) or, when small, the bytes
    filename: str
    sha256: str
    size: int
    media_type: MediaType
    fields: dict[str, list[str]] = field(default_factory=dict)


async def receive_upload(request: web.Request, spool: Path, max_bytes: int) -> Upload:
    """Stream the `file` part into memory or, once large, a file in `spool`; the caller owns
    (and removes, with `discard`) that file."""
    if request.content_length is not None and request.content_length > max_bytes + MAX_FIELD_BYTES:
        raise _too_large(max_bytes)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:
        raise OcrflowError(
            ErrorCode.MALFORMED_REQUEST, f"not a multipart/form-data body: {exc}"
        ) from exc
    fields: dict[str, list[str]] = {}
    upload: Upload | None = None
    pace = Pace()
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name, filename = disposition(part)
            if not name:
                continue
            if name == "file" and upload is None:
                upload = await _spool_file(part, filename, spool, max_bytes, pace)
            else:
                if sum(map(len, fields.values())) >= MAX_FIELDS:
                    raise OcrflowError(
                        ErrorCode.MALFORMED_REQUEST, f"more than {MAX_FIELDS} form fields"
                    )
                fields.setdefault(name, []).append(await _read_field(part, name, pace))
    except BaseException as exc:
        if upload:  # refused (or the client went away) after the file arrived
            discard(upload.content)
        # aiohttp raises its own header errors (control characters in a part's headers).
        if isinstance(exc, ValueError | AssertionError | HttpProcessingError):
            raise OcrflowError(
                ErrorCode.MALFORMED_REQUEST, f"the multipart body is malformed: {exc}"
            ) from exc
        raise
    if upload is None:
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "the form has no `file` part")
    upload.fields = fields
    return upload


def parse_disposition(header: str | None) -> tuple[str | None, dict[str, str]]:
    """aiohttp's `parse_content_disposition`, with the same answers, but the plain form every
    client sends is read with one regular expression (1.6 µs); anything else (escapes, RFC 5987
    names, odd spacing) goes to aiohttp's full parser (32 µs: it rebuilds a 128-character escape
    table each call)."""
    if header and (plain := _PLAIN_DISPOSITION.fullmatch(header)):
        found = _DISPOSITION_PARAM.findall(plain[1])
        params = {key: value.lstrip("/") for key, value in found}
        if len(params) == len(found):  # a repeated parameter is aiohttp's to refuse
            return "form-data", params
    return _parse_content_disposition(header)


def disposition(part: BodyPartReader) -> tuple[str | None, str | None]:
    """A part's field name and filename."""
    _, params = parse_disposition(part.headers.get(CONTENT_DISPOSITION))
    return (
        content_disposition_filename(params, "name"),
        content_disposition_filename(params, "filename"),
    )


class Spool:
    """Where an upload's bytes go: memory while they fit in MEMORY_BYTES, then a file in
    `directory` holding all of them."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._memory = bytearray()
        self._file: IO[bytes] | None = None

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            if len(self._memory) + len(chunk) <= MEMORY_BYTES:
                self._memory += chunk
                return
            self._directory.mkdir(parents=True, exist_ok=True)
            self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by close()
                dir=self._directory, prefix="upload-", delete=False
            )
            self._file.write(self._memory)
            self._memory = bytearray()
        self._file.write(chunk)

    def close(self) -> Path | bytes:
        """What arrived: the spool file, closed, or the bytes."""
        if self._file is None:
            return bytes(self._memory)
        self._file.close()
        return Path(self._file.name)


def discard(content: Path | bytes) -> None:
    if isinstance(content, Path):
        content.unlink(missing_ok=True)


class Pace:
    """A body must keep coming: it may take GRACE seconds, and one more for each MIN_RATE
    bytes it has brought. A client dripping a large body (50 MB at 100 B/s) is cut off in
    about GRACE seconds; a phone on a poor link (10 KB/s) is not."""

    GRACE = 30.0
    MIN_RATE = 8 * 1024  # bytes a second

    def __init__(self) -> None:
        self._started, self._received = time.monotonic(), 0

    async def read(self, part: BodyPartReader) -> bytes:
        left = self._started + self.GRACE + self._received / self.MIN_RATE - time.monotonic()
        try:
            async with asyncio.timeout(max(left, 0.0)):
                chunk = await part.read_chunk(CHUNK)
        except TimeoutError as exc:
            raise OcrflowError(
                ErrorCode.REQUEST_TIMEOUT,
                f"the body came too slowly ({self._received} bytes in "
                f"{time.monotonic() - self._started:.0f} s)",
            ) from exc
        self._received += len(chunk)
        return chunk


async def _spool_file(
    part: BodyPartReader, filename: str | None, spool: Path, max_bytes: int, pace: Pace
) -> Upload:
    into = Spool(spool)
    incoming = Incoming(into, max_bytes, lambda: _too_large(max_bytes))
    try:
        with disk_errors("the ingress's upload spool"):
            while chunk := await pace.read(part):
                incoming.add(chunk)
    except BaseException:
        discard(into.close())
        raise
    return Upload(
        content=into.close(),
        filename=filename or "upload",  # made safe by `Source`
        sha256=incoming.sha256,
        size=incoming.size,
        media_type=incoming.media_type(),
    )


async def _read_field(part: BodyPartReader, name: str, pace: Pace) -> str:
    raw = b""
    while chunk := await pace.read(part):
        raw += chunk
        if len(raw) > MAX_FIELD_BYTES:
            raise OcrflowError(ErrorCode.PAYLOAD_TOO_LARGE, f"form field `{name}` is too large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OcrflowError(
            ErrorCode.MALFORMED_REQUEST, f"form field `{name}` is not UTF-8"
        ) from exc


def _too_large(max_bytes: int) -> OcrflowError:
    return OcrflowError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"the file is larger than the limit of {max_bytes} bytes"
    )
