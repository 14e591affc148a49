"""Storage in a local directory: objects are files, written beside their key and renamed."""

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from ocrflow.errors import ErrorCode
from ocrflow.storage import layout
from ocrflow.storage.backend import ObjectNotFound, StorageError, disk_errors

CHUNK = 256 * 1024


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
        with disk_errors("storage"):
            await self._put_file(key, path, move=move)

    async def _put_file(self, key: str, path: Path, *, move: bool) -> None:
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
        with disk_errors("storage"):
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

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(self._path(key).open, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {key}") from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

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

    async def copy_in(self, bucket: str, key: str, target: str) -> None:
        raise StorageError(
            "objects in other buckets need S3 storage",
            code=ErrorCode.S3_STORAGE_REQUIRED,
            retryable=False,
        )

    async def job_ids(self) -> list[str]:
        """Every job that has objects stored."""
        jobs = self.root / layout.JOBS
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    async def delete_job(self, job_id: str) -> None:
        await self.delete_prefix(layout.job_prefix(job_id))

    async def delete_prefix(self, prefix: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._path(prefix), True)

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
