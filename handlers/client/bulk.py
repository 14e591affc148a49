"""`ocrflow submit`: many files (or URLs) with bounded concurrency, a resumable manifest, and
outputs mirrored into a directory."""

import asyncio
import glob
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ocrflow.handlers.client.api import ApiFailure, OcrflowClient


@dataclass
class Entry:
    file: str
    sha256: str | None = None
    job_id: str | None = None
    state: str = "pending"
    error: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Plan:
    server: str
    api_key: str | None
    concurrency: int
    wait: bool
    out: Path | None
    fields: dict[str, str]
    manifest: Path


def collect(paths: list[str]) -> list[tuple[Path, Path]]:
    """Every file under the arguments (directories walked, globs expanded), with the root each
    one's output path is made relative to."""
    found: list[tuple[Path, Path]] = []
    for argument in paths:
        # Patterns come from the command line and may be absolute: Path.glob cannot take those.
        matches = [Path(p) for p in glob.glob(argument, recursive=True)] or [Path(argument)]  # noqa: PTH207
        for match in matches:
            if match.is_dir():
                found += [(f, match) for f in sorted(match.rglob("*")) if f.is_file()]
            elif match.is_file():
                found.append((match, match.parent))
    return found


def load_manifest(path: Path) -> dict[str, Entry]:
    """The last line for each file wins: a rerun appends, it never rewrites."""
    entries: dict[str, Entry] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = Entry(**json.loads(line))
                entries[entry.file] = entry
    return entries


class Bulk:
    def __init__(self, plan: Plan, client: OcrflowClient) -> None:
        self.plan, self.client = plan, client
        self.counts: Counter[str] = Counter()
        self.done = load_manifest(plan.manifest)
        self._manifest = plan.manifest.open("a")

    def close(self) -> None:
        self._manifest.close()

    def record(self, entry: Entry) -> None:
        self._manifest.write(json.dumps(asdict(entry)) + "\n")
        self._manifest.flush()
        self.counts[entry.state] += 1

    async def file(self, path: Path, root: Path) -> Entry:
        started = time.monotonic()
        entry = Entry(file=str(path), sha256=await asyncio.to_thread(_sha256, path))
        earlier = self.done.get(entry.file)
        if earlier and earlier.state == "succeeded" and earlier.sha256 == entry.sha256:
            self.counts["skipped"] += 1
            return earlier
        try:
            job = await self.client.submit_file(path, **self.plan.fields)
            entry.job_id, entry.state = job["id"], job["state"]
            if self.plan.wait:
                job = await self.client.wait(job["id"])
                entry.state = job["state"]
                entry.error = (job.get("error") or {}).get("code")
                if job["state"] == "succeeded" and self.plan.out is not None:
                    await self._download(job, path, root)
        except ApiFailure as exc:
            entry.state, entry.error = "failed", exc.code
        entry.seconds = round(time.monotonic() - started, 3)
        self.record(entry)
        return entry

    async def url(self, url: str) -> Entry:
        started = time.monotonic()
        earlier = self.done.get(url)
        if earlier and earlier.state == "succeeded":
            self.counts["skipped"] += 1
            return earlier
        entry = Entry(file=url)
        try:
            job = await self.client.submit_url(url, **self.plan.fields)
            entry.job_id, entry.state = job["id"], job["state"]
            if self.plan.wait:
                job = await self.client.wait(job["id"])
                entry.state, entry.sha256 = job["state"], job["source"].get("sha256")
                entry.error = (job.get("error") or {}).get("code")
        except ApiFailure as exc:
            entry.state, entry.error = "failed", exc.code
        entry.seconds = round(time.monotonic() - started, 3)
        self.record(entry)
        return entry

    async def _download(self, job: dict[str, Any], path: Path, root: Path) -> None:
        assert self.plan.out is not None
        relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        for name in job["outputs"]:
            target = self.plan.out / relative.parent / f"{relative.stem}.{_extension(name)}"
            await self.client.download(job, name, target)


def _extension(name: str) -> str:
    return {"text": "txt", "json": "json", "hocr": "hocr.html", "csv": "csv", "pdf": "ocr.pdf"}.get(
        name, name
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def submit_many(plan: Plan, paths: list[str], urls: list[str]) -> int:
    files = collect(paths)
    async with OcrflowClient(plan.server, api_key=plan.api_key) as client:
        bulk = Bulk(plan, client)
        limit = asyncio.Semaphore(plan.concurrency)
        progress = asyncio.create_task(_show(bulk, len(files) + len(urls)))

        async def one(path: Path, root: Path) -> Entry:
            async with limit:
                return await bulk.file(path, root)

        async def fetched(url: str) -> Entry:
            async with limit:
                return await bulk.url(url)

        try:
            entries = await asyncio.gather(
                *(one(path, root) for path, root in files), *(fetched(url) for url in urls)
            )
        finally:
            progress.cancel()
            bulk.close()
    _summary(bulk, len(files) + len(urls))
    failed = [e for e in entries if e.state in ("failed", "cancelled")]
    return 1 if failed else 0


async def _show(bulk: Bulk, total: int) -> None:
    while True:
        await asyncio.sleep(0.5 if sys.stderr.isatty() else 10)
        line = ", ".join(f"{state} {n}" for state, n in sorted(bulk.counts.items()))
        end = "\r" if sys.stderr.isatty() else "\n"
        print(f"{sum(bulk.counts.values())}/{total} files: {line}   ", end=end, file=sys.stderr)


def _summary(bulk: Bulk, total: int) -> None:
    line = ", ".join(f"{state} {n}" for state, n in sorted(bulk.counts.items()))
    print(f"{total} files: {line}; manifest: {bulk.plan.manifest}")
