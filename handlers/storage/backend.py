"""Where sources and outputs live: behind one interface, a local directory by default."""

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from ocrflow.handlers.errors import ErrorCode, OcrflowError
from ocrflow.handlers.settings import Settings


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

    def local_path(self, key: str) -> Path | None: ...

    async def download_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        """A presigned link to the object, where the backend has such links."""
        ...

    async def modified(self, key: str) -> float | None:
        """When the object was last written (seconds since the epoch), or None if absent."""
        ...

    async def copy(self, source: str, target: str) -> None: ...

    async def job_ids(self) -> list[str]: ...

    async def delete_job(self, job_id: str) -> None: ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...


class LocalStorage:
    """Objects as files under one directory; keys are built by ocrflow, never by callers."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Lexical: ocrflow makes every key and no symlinks, so no need for resolve()'s lstat of
        # each component on every request; ".." can still never climb out.
        path = Path(os.path.normpath(self.root / key))
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    async def put_file(
        self, key: str, path: Path, *, content_type: str, move: bool = False
    ) -> None:
        target = self._path(key)
        if move:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)  # same file system: a rename, not a copy
                return
            except OSError:
                pass  # another file system: copy instead
        await asyncio.to_thread(_copy_atomically, path, target)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        # Written in place, in the event loop: small, into the page cache, and named by nothing
        # until the caller records it (see Storage.put_bytes).
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def fetch(self, key: str, dest: Path) -> None:
        try:
            await asyncio.to_thread(shutil.copyfile, self._path(key), dest)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {key}") from exc

    async def read_bytes(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {key}") from exc

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    async def download_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        return None  # the ingress streams local files itself

    async def modified(self, key: str) -> float | None:
        path = self.local_path(key)
        return path.stat().st_mtime if path else None

    async def copy(self, source: str, target: str) -> None:
        try:
            await asyncio.to_thread(_copy_atomically, self._path(source), self._path(target))
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {source}") from exc

    async def job_ids(self) -> list[str]:
        """Every job that has objects stored."""
        jobs = self.root / "jobs"
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    async def delete_job(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._path(f"jobs/{job_id}"), True)

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory {self.root} is not writable")

    async def close(self) -> None:
        return None


def _copy_atomically(source: Path, target: Path) -> None:
    """Readers never see a half-written object: copy beside the target, then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    os.close(fd)
    try:
        shutil.copyfile(source, temporary)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def open_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        from ocrflow.handlers.storage.s3 import S3Storage

        return await S3Storage.open(settings)
    return LocalStorage(settings.storage_dir)
