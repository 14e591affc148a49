"""A job's document on its way in: hashed, counted against the size limit and typed from its
first bytes as it arrives, and its name made safe to show, whichever way it came."""

import hashlib
import unicodedata
from collections.abc import Callable
from typing import IO, Protocol
from urllib.parse import unquote

from ocrflow.pipeline.media import SNIFF_BYTES, MediaType, sniff

MAX_FILENAME = 200
# Control and format characters (newlines of every kind, bidirectional overrides, zero-width
# marks), separators that end lines, surrogates and unassigned code points: none belongs in a
# name that goes into headers, e-mail subjects and web pages.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class Sink(Protocol):
    def write(self, chunk: bytes, /) -> object: ...


class Incoming:
    """A document arriving in chunks: written out, hashed, counted against the size limit,
    its first bytes kept to tell its type."""

    def __init__(self, sink: Sink | IO[bytes], max_bytes: int, too_large: Callable[[], Exception]):
        self._sink, self._max_bytes, self._too_large = sink, max_bytes, too_large
        self._digest, self._head, self.size = hashlib.sha256(), b"", 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max_bytes:
            raise self._too_large()
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        self._digest.update(chunk)
        self._sink.write(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def media_type(self) -> MediaType:
        return sniff(self._head)


def clean_filename(name: str, *, default: str = "upload") -> str:
    """A display name only, never a path: the last path component, percent-decoding undone,
    without control, format or line-separating characters, at most MAX_FILENAME long."""
    # Some clients percent-encode the name (aiohttp does), others send it raw (curl, browsers).
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    safe = "".join(c for c in base if unicodedata.category(c) not in _UNSAFE_CATEGORIES)
    return " ".join(safe.split())[:MAX_FILENAME].strip() or default
