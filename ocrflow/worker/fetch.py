"""Fetching a document from a URL for a job: public addresses only (checked on every hop and
every DNS answer), bounded redirects, a size limit enforced while streaming, timeouts."""

from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs.sources import Incoming
from ocrflow.pipeline.media import MediaType
from ocrflow.runtime.addresses import AddressNotAllowed, check_url, connector_options
from ocrflow.runtime.logs import redact_url

MAX_REDIRECTS = 5
CHUNK = 256 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchFailed(OcrflowError):
    def __init__(
        self, message: str, *, code: ErrorCode = ErrorCode.URL_FETCH_FAILED, retryable: bool = False
    ) -> None:
        super().__init__(code, message, retryable=retryable)


@dataclass(frozen=True)
class Fetched:
    sha256: str
    size: int
    media_type: MediaType
    filename: str


async def fetch_url(
    url: str, dest: Path, *, max_bytes: int, allow_private: bool, timeout: float
) -> Fetched:
    connector = aiohttp.TCPConnector(**connector_options(allow_private=allow_private))
    limits = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10))
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=limits) as session:
            return await _follow(session, URL(url), dest, max_bytes, allow_private)
    except AddressNotAllowed as exc:
        raise FetchFailed(exc.message, code=ErrorCode.URL_NOT_ALLOWED) from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise FetchFailed(
            f"fetching {redact_url(url)} failed: {detail}",
            code=ErrorCode.URL_UNREACHABLE,
            retryable=True,
        ) from exc


async def _follow(
    session: aiohttp.ClientSession, url: URL, dest: Path, max_bytes: int, allow_private: bool
) -> Fetched:
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private=allow_private)
        async with session.get(url, allow_redirects=False) as response:
            if response.status in REDIRECTS and "Location" in response.headers:
                url = url.join(URL(response.headers["Location"]))
                continue
            if response.status >= 400:
                raise FetchFailed(
                    f"{redact_url(str(url))} answered HTTP {response.status}",
                    retryable=response.status >= 500 or response.status == 429,
                )
            return await _save(response, url, dest, max_bytes)
    raise FetchFailed(f"more than {MAX_REDIRECTS} redirects from {redact_url(str(url))}")


def _too_large(max_bytes: int) -> FetchFailed:
    return FetchFailed(
        f"the document is larger than {max_bytes} bytes", code=ErrorCode.PAYLOAD_TOO_LARGE
    )


async def _save(response: aiohttp.ClientResponse, url: URL, dest: Path, max_bytes: int) -> Fetched:
    if (response.content_length or 0) > max_bytes:
        raise _too_large(max_bytes)
    with dest.open("wb") as handle:
        incoming = Incoming(handle, max_bytes, lambda: _too_large(max_bytes))
        async for chunk in response.content.iter_chunked(CHUNK):
            incoming.add(chunk)
    name = url.name or url.host or "download"
    return Fetched(
        sha256=incoming.sha256, size=incoming.size, media_type=incoming.media_type(), filename=name
    )
