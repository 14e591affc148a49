"""What every storage backend offers, how its failures look, and opening the configured one."""

import contextlib
import errno
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.settings import Settings


class StorageError(OcrflowError):
    """A storage operation failed in a way worth retrying."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode = ErrorCode.STORAGE_UNAVAILABLE,
        retryable: bool = True,
    ) -> None:
        super().__init__(code, message, retryable=retryable)


class ObjectNotFound(StorageError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code=ErrorCode.OBJECT_NOT_FOUND, retryable=False)


class DiskFull(StorageError):
    def __init__(self, where: str) -> None:
        super().__init__(
            f"no space left on the disk holding {where}",
            code=ErrorCode.INSUFFICIENT_STORAGE,
            retryable=True,
        )


@contextlib.contextmanager
def disk_errors(where: str) -> Iterator[None]:
    """A full disk (or quota) as `DiskFull`, so callers hear what happened, not a 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(where) from exc
        raise


@dataclass(frozen=True)
class StoredObject:
    """An object already in a bucket, to be copied to where a job's source lives: one of
    ocrflow's own keys, or (with `bucket`) any object the credentials can read."""

    key: str
    bucket: str | None = None


@dataclass(frozen=True)
class Peeked:
    head: bytes  # the first bytes, enough to tell the type
    size: int
    etag: str  # the object's checksum as the store gives it (quotes removed)


class Storage(Protocol):
    async def put_file(
        self, key: str, path: Path, *, content_type: str, move: bool = False
    ) -> None:
        """Store a file; with `move`, the caller is done with it and it may be taken as is."""
        ...

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store a small object held in memory. Not atomic on every backend: nothing may name
        the key until this returns."""
        ...

    async def fetch(self, key: str, dest: Path) -> None: ...

    async def read_bytes(self, key: str) -> bytes: ...

    def chunks(self, key: str) -> AsyncIterator[bytes]:
        """The object a piece at a time, never whole in memory."""
        ...

    def local_path(self, key: str) -> Path | None: ...

    async def download_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        """A presigned link to the object, where the backend has such links."""
        ...

    async def modified(self, key: str) -> float | None:
        """When the object was last written (seconds since the epoch), or None if absent."""
        ...

    async def copy(self, source: str, target: str) -> None: ...

    async def copy_in(self, bucket: str, key: str, target: str) -> None:
        """Copy an object from another bucket into ocrflow's own keys."""
        ...

    async def job_ids(self) -> list[str]: ...

    async def delete_job(self, job_id: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None:
        """Every object whose key starts with `prefix` (a "folder": it ends with a slash)."""
        ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...


async def open_storage(settings: Settings) -> Storage:
    # Each backend's module loads only when chosen: aioboto3 takes a while to import.
    if settings.storage_backend == "s3":
        from ocrflow.storage.s3 import S3Storage

        return await S3Storage.open(settings)
    from ocrflow.storage.local import LocalStorage

    return LocalStorage(settings.storage_dir)
