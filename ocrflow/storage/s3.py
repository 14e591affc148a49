"""S3 storage through aioboto3: one session and one client per process, opened at startup."""

import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aioboto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ocrflow.settings import Settings
from ocrflow.storage import layout
from ocrflow.storage.backend import ObjectNotFound, Peeked, StorageError

MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
DELETE_BATCH = 1000  # the most DeleteObjects takes at once
CHUNK = 256 * 1024


class S3Storage:
    """Objects under `prefix` in one bucket; works with any S3-compatible endpoint."""

    def __init__(self, client: Any, stack: AsyncExitStack, settings: Settings) -> None:
        self._client, self._stack = client, stack
        self.bucket = str(settings.s3_bucket)
        self.prefix = settings.s3_prefix.strip("/") + "/" if settings.s3_prefix.strip("/") else ""
        self._expiry = settings.download_url_expiry
        self._transfer = TransferConfig(
            multipart_threshold=settings.s3_multipart_threshold,
            multipart_chunksize=settings.s3_multipart_threshold,
        )

    @classmethod
    async def open(cls, settings: Settings) -> "S3Storage":
        session = aioboto3.Session(
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region,
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            session.client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"},
                    signature_version="s3v4",  # presigned links: SigV4, which every region takes
                ),
            )
        )
        return cls(client, stack, settings)

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def put_file(
        self, key: str, path: Path, *, content_type: str, move: bool = False
    ) -> None:
        with _translated(key):
            await self._client.upload_file(
                str(path),
                self.bucket,
                self._key(key),
                Config=self._transfer,
                ExtraArgs={"ContentType": content_type},
            )

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        with _translated(key):
            await self._client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            )

    async def fetch(self, key: str, dest: Path) -> None:
        with _translated(key):
            await self._client.download_file(self.bucket, self._key(key), str(dest))

    async def read_bytes(self, key: str) -> bytes:
        with _translated(key):
            response = await self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        with _translated(key):
            response = await self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            async with response["Body"] as body:
                async for chunk in body.content.iter_chunked(CHUNK):  # aiohttp's response
                    yield chunk

    def local_path(self, key: str) -> Path | None:
        return None

    async def download_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        }
        url: str = await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self._expiry
        )
        return url

    async def modified(self, key: str) -> float | None:
        try:
            with _translated(key):
                head = await self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            return None
        return float(head["LastModified"].timestamp())

    async def copy(self, source: str, target: str) -> None:
        with _translated(source):
            await self._client.copy_object(
                Bucket=self.bucket,
                Key=self._key(target),
                CopySource={"Bucket": self.bucket, "Key": self._key(source)},
            )

    async def job_ids(self) -> list[str]:
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        with _translated(layout.JOBS):
            async for page in paginator.paginate(
                Bucket=self.bucket, Prefix=self._key(layout.JOBS), Delimiter="/"
            ):
                found += [
                    p["Prefix"].rstrip("/").rsplit("/", 1)[-1]
                    for p in page.get("CommonPrefixes", [])
                ]
        return sorted(found)

    async def delete_job(self, job_id: str) -> None:
        await self.delete_prefix(layout.job_prefix(job_id))

    async def delete_prefix(self, prefix: str) -> None:
        paginator = self._client.get_paginator("list_objects_v2")
        with _translated(prefix):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                for start in range(0, len(objects), DELETE_BATCH):
                    await self._client.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": objects[start : start + DELETE_BATCH]},
                    )

    async def upload_form(self, key: str, *, max_bytes: int, expiry: int) -> dict[str, Any]:
        """A presigned POST form for a client to send one object straight to the bucket."""
        form: dict[str, Any] = await self._client.generate_presigned_post(
            self.bucket,
            self._key(key),
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=expiry,
        )
        return form

    async def peek(self, bucket: str, key: str, count: int) -> Peeked:
        """The first `count` bytes of any object the credentials can read, its size and its
        checksum."""
        with _translated(key):
            response = await self._client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{count - 1}"
            )
            async with response["Body"] as body:
                head: bytes = await body.read()
        total = str(response.get("ContentRange", "")).rsplit("/", 1)[-1]
        size = int(total) if total.isdigit() else int(response["ContentLength"])
        return Peeked(head, size, str(response.get("ETag", "")).strip('"'))

    def own_key(self, key: str) -> str:
        """Where one of ocrflow's keys lives in the bucket (under the prefix)."""
        return self._key(key)

    async def delete(self, key: str) -> None:
        with _translated(key):
            await self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def copy_in(self, bucket: str, key: str, target: str) -> None:
        """Copy an object from anywhere the credentials reach into ocrflow's own keys."""
        with _translated(key):
            await self._client.copy_object(
                Bucket=self.bucket, Key=self._key(target), CopySource={"Bucket": bucket, "Key": key}
            )

    async def check(self) -> None:
        with _translated(""):
            await self._client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()


@contextlib.contextmanager
def _translated(key: str) -> Any:
    """botocore's errors as storage errors: a missing object, or a fault worth retrying."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in MISSING:
            raise ObjectNotFound(f"no object at {key}") from exc
        raise StorageError(f"S3 refused {key}: {code}") from exc
    except (BotoCoreError, OSError) as exc:
        raise StorageError(f"S3 unreachable for {key}: {exc}") from exc
