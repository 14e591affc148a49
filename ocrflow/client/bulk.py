"""`ocrflow submit`: many files (or URLs) with bounded concurrency, a resumable manifest, and
outputs mirrored into a directory."""

import asyncio
import csv
import glob
import hashlib
import html
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from ocrflow.client.api import ApiFailure, OcrflowClient

# Exit codes scripts can rely on (`ocrflow submit --help` lists them).
ALL_DONE, SOME_FAILED, BAD_INPUT, UNREACHABLE, FAILED_CHECKS = 0, 1, 2, 3, 4
# Refusals that would meet every file alike: the run stops at the first one.
REFUSED_OPTIONS = frozenset(
    {"invalid_options", "unsupported_language", "unknown_handler", "invalid_handler_params"}
)
SUMMARY_FAILURES = 20
# Failures that another try may mend (the service, the network, a crash); any other code says
# the document itself cannot be read, and a rerun leaves it alone unless told to retry it.
PASSING_FAULTS = frozenset(
    {
        "unreachable",
        "internal_error",
        "service_unavailable",
        "storage_unavailable",
        "ocr_engine_error",
        "url_unreachable",
        "timeout",
        "too_many_attempts",
        "rate_limited",
        "too_many_active_jobs",
        "backlog_full",
        "insufficient_storage",
        "request_timeout",
    }
)


@dataclass
class Entry:
    file: str
    sha256: str | None = None
    job_id: str | None = None
    state: str = "pending"
    error: str | None = None  # the stable code
    seconds: float | None = None
    message: str | None = None  # what went wrong, in words
    verdict: str | None = None  # passed | failed, when the job ran `validate`
    failed_rules: list[str] | None = None  # each failed rule in words
    fields: dict[str, str | None] | None = None  # what the `fields` handler read, by name


@dataclass(frozen=True)
class Plan:
    server: str
    api_key: str | None
    concurrency: int
    wait: bool
    out: Path | None
    fields: dict[str, str]
    manifest: Path
    retry_failed: bool = False  # send again the documents that failed for good last time
    report: Path | None = None  # one CSV (and an HTML page beside it) for the whole run


class OptionsRefused(Exception):
    """The service refused the options themselves: every file would fail the same way."""


# What a directory walked holds that is worth sending (as `ocrflow ocr` reads); a file named
# on the command line is always sent, and the service tells its type from its bytes.
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})


@dataclass
class Collected:
    files: list[tuple[Path, Path]]  # each file, and the root its outputs' paths are made from
    missing: list[str]  # arguments that matched nothing
    skipped: list[Path]  # files in directories walked that are not documents (a readme.txt)


def collect(paths: list[str]) -> Collected:
    """Every document under the arguments (directories walked, globs expanded)."""
    found = Collected([], [], [])
    for argument in paths:
        # Patterns come from the command line and may be absolute: Path.glob cannot take those.
        matches = [Path(p) for p in glob.glob(argument, recursive=True)] or [Path(argument)]  # noqa: PTH207
        if not any(match.exists() for match in matches):
            found.missing.append(argument)
        for match in matches:
            if match.is_dir():
                inside = [f for f in sorted(match.rglob("*")) if f.is_file()]
                found.files += [(f, match) for f in inside if f.suffix.lower() in DOCUMENT_SUFFIXES]
                found.skipped += [f for f in inside if f.suffix.lower() not in DOCUMENT_SUFFIXES]
            elif match.is_file():
                found.files.append((match, match.parent))
    return found


def read_url_list(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


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
        self.verdicts: Counter[str] = Counter()  # of the jobs that ran `validate`
        self.done = load_manifest(plan.manifest)
        plan.manifest.parent.mkdir(parents=True, exist_ok=True)
        self._manifest = plan.manifest.open("a")

    def close(self) -> None:
        self._manifest.close()

    def record(self, entry: Entry) -> None:
        self._manifest.write(json.dumps(asdict(entry)) + "\n")
        self._manifest.flush()
        self.counts[entry.state] += 1

    async def file(self, path: Path, root: Path) -> Entry:
        entry = Entry(file=str(path), sha256=await asyncio.to_thread(_sha256, path))
        earlier = self.done.get(entry.file)
        if earlier and earlier.sha256 == entry.sha256 and self._settled(earlier):
            self.counts["skipped"] += 1
            return earlier

        async def run() -> None:
            job = await self._follow(entry, await self.client.submit_file(path, **self.plan.fields))
            if entry.state == "succeeded" and self.plan.out is not None:
                await self._download(job, path, root)

        return await self._attempt(entry, run)

    def _settled(self, earlier: Entry) -> bool:
        """Whether a rerun leaves this file alone: read, or failed for good (the same bytes
        would fail the same way) unless told to retry those."""
        if earlier.state == "succeeded":
            return True
        failed_for_good = earlier.state == "failed" and earlier.error not in PASSING_FAULTS
        return failed_for_good and not self.plan.retry_failed

    async def url(self, url: str) -> Entry:
        earlier = self.done.get(url)
        if earlier and self._settled(earlier):
            self.counts["skipped"] += 1
            return earlier
        entry = Entry(file=url)

        async def run() -> None:
            job = await self._follow(entry, await self.client.submit_url(url, **self.plan.fields))
            entry.sha256 = job["source"].get("sha256")

        return await self._attempt(entry, run)

    async def _attempt(self, entry: Entry, run: Callable[[], Awaitable[None]]) -> Entry:
        """Run one file's submission; whatever fails, the file is recorded with why."""
        started = time.monotonic()
        try:
            await run()
        except ApiFailure as exc:
            if exc.status == 422 and exc.code in REFUSED_OPTIONS:
                raise OptionsRefused(exc.explain()) from exc
            entry.state, entry.error, entry.message = "failed", exc.code, exc.explain()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            entry.state, entry.error = "failed", "unreachable"
            entry.message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        entry.seconds = round(time.monotonic() - started, 3)
        self.record(entry)
        return entry

    async def _follow(self, entry: Entry, job: dict[str, Any]) -> dict[str, Any]:
        """The submitted job, once it has ended when waiting; `entry` says how it went."""
        entry.job_id, entry.state = job["id"], job["state"]
        if self.plan.wait:
            job = await self.client.wait(job["id"])
            entry.state = job["state"]
            error = job.get("error") or {}
            entry.error, entry.message = error.get("code"), error.get("message")
            if verdict := job.get("verdict"):
                entry.verdict = "passed" if verdict["passed"] else "failed"
                entry.failed_rules = [f"{i['rule']}: {i['reason']}" for i in verdict["failed"]]
                self.verdicts[entry.verdict] += 1
            if "fields.json" in job.get("outputs", {}):
                found = (await self.client.output_json(job, "fields.json"))["fields"]
                entry.fields = {name: (item or {}).get("value") for name, item in found.items()}
        return job

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
    """Submit everything; the exit code (ALL_DONE, SOME_FAILED, BAD_INPUT, UNREACHABLE)."""
    collected = collect(paths)
    files, missing = collected.files, collected.missing
    for argument in missing:
        _complain(f"{argument}: no such file or directory")
    if collected.skipped:
        names = ", ".join(str(path) for path in collected.skipped[:SUMMARY_FAILURES])
        more = len(collected.skipped) - SUMMARY_FAILURES
        print(
            f"skipped {len(collected.skipped)} files that are not documents: {names}"
            + (f" and {more} more" if more > 0 else ""),
            file=sys.stderr,
        )
    if missing or not (files or urls):
        if not missing:
            _complain("nothing to submit: give files, directories, globs or --url-list")
        return BAD_INPUT
    async with OcrflowClient(plan.server, api_key=plan.api_key) as client:
        if (problem := await _reach(client, plan)) is not None:
            _complain(problem)
            return UNREACHABLE
        bulk = Bulk(plan, client)
        try:
            entries = await _run_all(bulk, files, urls)
        except OptionsRefused as exc:
            _complain(f"the server refuses these options: {exc}")
            return BAD_INPUT
        finally:
            bulk.close()
    _summary(bulk, entries)
    if plan.report is not None:
        write_report(plan.report, entries)
    failed = [e for e in entries if e.state in ("failed", "cancelled")]
    if failed:
        return SOME_FAILED
    return FAILED_CHECKS if any(entry.verdict == "failed" for entry in entries) else ALL_DONE


async def _reach(client: OcrflowClient, plan: Plan) -> str | None:
    """Why the service cannot take this run (unreachable, or the key refused), if so."""
    try:
        await client.check()
    except ApiFailure as exc:
        if exc.code == "unauthorized":
            how = "the key was refused" if plan.api_key else "it needs an API key"
            return f"{plan.server}: {how} (--api-key, or OCRFLOW_API_KEY)"
        return f"{plan.server}: {exc.status} {exc.code}: {exc.explain()}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return f"cannot reach {plan.server}: {exc}"
    return None


async def _run_all(bulk: Bulk, files: list[tuple[Path, Path]], urls: list[str]) -> list[Entry]:
    limit = asyncio.Semaphore(bulk.plan.concurrency)
    progress = asyncio.create_task(_show(bulk, len(files) + len(urls)))

    async def bounded(work: Awaitable[Entry]) -> Entry:
        async with limit:
            return await work

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(bounded(bulk.file(path, root))) for path, root in files]
            tasks += [group.create_task(bounded(bulk.url(url))) for url in urls]
    except* OptionsRefused as refused:
        raise refused.exceptions[0] from None
    finally:
        progress.cancel()
    return [task.result() for task in tasks]


def _complain(message: str) -> None:
    print(f"ocrflow submit: {message}", file=sys.stderr)


async def _show(bulk: Bulk, total: int) -> None:
    while True:
        await asyncio.sleep(0.5 if sys.stderr.isatty() else 10)
        line = ", ".join(f"{state} {n}" for state, n in sorted(bulk.counts.items()))
        end = "\r" if sys.stderr.isatty() else "\n"
        print(f"{sum(bulk.counts.values())}/{total} files: {line}   ", end=end, file=sys.stderr)


def _summary(bulk: Bulk, entries: list[Entry]) -> None:
    line = ", ".join(f"{state} {n}" for state, n in sorted(bulk.counts.items()))
    checks = ", ".join(f"{verdict} {n}" for verdict, n in sorted(bulk.verdicts.items()))
    checked = f"; checks {checks}" if checks else ""
    print(f"{len(entries)} files: {line}{checked}; manifest: {bulk.plan.manifest}")
    for entry in [e for e in entries if e.verdict == "failed"][:SUMMARY_FAILURES]:
        print(f"  failed its checks: {entry.file}: {'; '.join(entry.failed_rules or [])}")
    failed = [e for e in entries if e.state in ("failed", "cancelled")]
    for entry in failed[:SUMMARY_FAILURES]:
        print(f"  {entry.state}: {entry.file}: {entry.error}: {entry.message or ''}".rstrip(": "))
    if len(failed) > SUMMARY_FAILURES:
        print(f"  … and {len(failed) - SUMMARY_FAILURES} more in the manifest")


def write_report(path: Path, entries: list[Entry]) -> None:
    """The run as one table: a row per document with its state, verdict, failed rules and every
    field's value; as CSV at `path` and as a page beside it (`.html`)."""
    names = sorted({name for entry in entries for name in (entry.fields or {})})
    header = ["file", "state", "verdict", "failed rules", "error", *names]
    rows = [
        [
            entry.file,
            entry.state,
            entry.verdict or "",
            "; ".join(entry.failed_rules or []),
            entry.error or "",
            *((entry.fields or {}).get(name) or "" for name in names),
        ]
        for entry in entries
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([_cell(value) for value in row] for row in [header, *rows])
    path.with_suffix(".html").write_text(_report_page(header, rows), encoding="utf-8")


def _cell(value: str) -> str:
    """A spreadsheet never runs what a page said (OWASP: a leading quote before =, +, -, @)."""
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def _report_page(header: list[str], rows: list[list[str]]) -> str:
    def row(cells: list[str], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"

    failed = sum(1 for cells in rows if cells[2] == "failed")
    body = "\n".join(
        row(cells).replace("<tr>", '<tr class="failed">', 1) if cells[2] == "failed" else row(cells)
        for cells in rows
    )
    return (
        '<!doctype html><meta charset="utf-8"><title>ocrflow report</title>'
        "<style>body{font:14px system-ui,sans-serif}td,th{padding:.2rem .5rem;text-align:left;"
        "border-bottom:1px solid #ddd}tr.failed{color:#b3261e}</style>"
        f"<h1>ocrflow report</h1><p>{len(rows)} documents; {failed} failed their checks.</p>"
        f"<table><thead>{row(header, 'th')}</thead><tbody>{body}</tbody></table>\n"
    )
