"""Reading the documents `ocrflow ocr` was given, on one pool, and saying how it went.

Outputs are written beside their final names and renamed into place, so a document's outputs
appear whole or not at all (Ctrl-C included)."""

import asyncio
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ocrflow.cli.targets import STDOUT, Target, UsageError
from ocrflow.pipeline.document import count_pages
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import SNIFF_BYTES, sniff
from ocrflow.pipeline.options import OcrOptions, Output
from ocrflow.pipeline.outputs import write_files
from ocrflow.pipeline.result import PageResult
from ocrflow.runtime.pool import OcrPool
from ocrflow.settings import Settings
from ocrflow.worker.recognition import run_document

OK, PARTIAL, USAGE, UNREADABLE = 0, 1, 2, 3


@dataclass
class Result:
    target: Target
    pages: list[PageResult] = field(default_factory=list)
    error: str | None = None  # why the document was not read, code first where it has one
    usage: bool = False  # the error is the command's (pages the document does not have)
    seconds: float = 0.0

    @property
    def failed_pages(self) -> list[PageResult]:
        return [page for page in self.pages if page.error]


class Progress:
    """A bar on a terminal (pages and documents), a line a document otherwise; -q: nothing."""

    def __init__(self, documents: int, *, quiet: bool, bar: bool) -> None:
        self.documents, self.quiet, self.bar = documents, quiet, bar and not quiet
        self.done_documents = self.pages_done = self.pages_known = 0
        self.started = time.perf_counter()
        self._drawn = False

    def pages_found(self, count: int) -> None:
        self.pages_known += count
        self._draw()

    def page_done(self, count: int) -> None:
        self.pages_done += count
        self._draw()

    def document_done(self, result: Result) -> None:
        self.done_documents += 1
        if not self.quiet and not self.bar and result.error is None:
            written = ", ".join(str(path) for path in result.target.files.values())
            print(
                f"{result.target.name}: {_count(len(result.pages), 'page')} in "
                f"{result.seconds:.1f} s "
                f"-> {written}",
                file=sys.stderr,
            )
        self._draw()

    def _draw(self) -> None:
        if not self.bar:
            return
        total = max(self.pages_known, 1)
        filled = int(30 * self.pages_done / total)
        line = (
            f"\r[{'#' * filled}{'-' * (30 - filled)}] {self.pages_done}/{self.pages_known} pages"
            f", {self.done_documents}/{self.documents} documents"
        )
        print(line, end="", file=sys.stderr, flush=True)
        self._drawn = True

    def end(self) -> None:
        if self._drawn:
            print(file=sys.stderr)
            self._drawn = False


async def read_all(
    pool: OcrPool,
    targets: Sequence[Target],
    options: OcrOptions,
    pages: frozenset[int] | None,
    settings: Settings,
    progress: Progress,
) -> list[Result]:
    # A few documents at once keep every process busy (one document's triage, another's pages)
    # without holding many documents' pages in memory.
    at_once = asyncio.Semaphore(settings.pool_processes + 1)

    async def one(target: Target) -> Result:
        async with at_once:
            result = await _read_one(pool, target, options, pages, settings, progress)
        progress.document_done(result)
        return result

    try:
        return await asyncio.gather(*(one(target) for target in targets))
    except BaseException:
        pool.kill()  # Ctrl-C: every Tesseract stops now, not at the end of its page
        raise


async def _read_one(
    pool: OcrPool,
    target: Target,
    options: OcrOptions,
    pages: frozenset[int] | None,
    settings: Settings,
    progress: Progress,
) -> Result:
    result = Result(target)
    started = time.perf_counter()

    async def on_page(done: int, total: int, batch: Sequence[PageResult]) -> None:
        if done == 0:
            progress.pages_found(total)
        progress.page_done(len(batch))

    try:
        with target.source.open("rb") as handle:
            media_type = sniff(handle.read(SNIFF_BYTES))
        with tempfile.TemporaryDirectory(prefix="ocrflow-") as workdir:
            result.pages = await run_document(
                pool,
                target.source.resolve(),
                media_type,
                Path(workdir),
                options,
                settings.runtime,
                on_page,
                pages,
                # One document alone on the machine: a lone page may use a second process.
                speculate=progress.documents == 1,
            )
            if not result.pages:
                result.usage = True
                count = count_pages(target.source, media_type, timeout=settings.page_timeout)
                raise UsageError(f"it has {_count(count, 'page')}, none of those --pages asks for")
            staged = {name: _staging(path, Path(workdir)) for name, path in target.files.items()}
            write = partial(
                write_files,
                source=target.source.resolve(),
                media_type=media_type,
                pages_only=pages is not None,
            )
            await pool.run(write, result.pages, staged)
            _put_in_place(staged, target.files)
    except PipelineError as exc:
        result.error = f"{exc.code}: {exc.message}"
    except UsageError as exc:
        result.error = str(exc)
    except BrokenProcessPool:
        result.error = "the OCR process crashed on every try"
    except OSError as exc:
        result.error = f"{exc.filename or target.source}: {exc.strerror}"
    result.seconds = time.perf_counter() - started
    return result


def _staging(final: Path | str, workdir: Path) -> Path:
    """Where an output is written first: beside its final name (the rename into place is
    then atomic), or in the scratch directory for standard output."""
    if final == STDOUT:
        return workdir / "stdout.txt"
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.parent / f".{final.name}.{secrets.token_hex(4)}.partial"


def _put_in_place(staged: dict[Output, Path], files: dict[Output, Path | str]) -> None:
    try:
        for name, path in staged.items():
            final = files[name]
            if final == STDOUT:
                with path.open("rb") as text:
                    shutil.copyfileobj(text, sys.stdout.buffer)
                sys.stdout.flush()
            else:
                path.replace(final)
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)


def report(results: list[Result], progress: Progress, *, quiet: bool) -> int:
    read = [result for result in results if result.error is None]
    for result in results:
        if result.error is not None:
            print(f"ocrflow ocr: {result.target.name}: {result.error}", file=sys.stderr)
        for page in result.failed_pages:
            assert page.error is not None
            print(
                f"ocrflow ocr: {result.target.name}: page {page.number}: "
                f"{page.error.code}: {page.error.message}",
                file=sys.stderr,
            )
    if not quiet:
        count = sum(len(result.pages) for result in read)
        seconds = time.perf_counter() - progress.started
        failed = len(results) - len(read)
        print(
            f"{len(read)} of {_count(len(results), 'document')} read "
            f"({_count(count, 'page')}) in {seconds:.1f} s"
            f" ({count / seconds:.2f} pages/s)" + (f"; {failed} failed" if failed else ""),
            file=sys.stderr,
        )
    if not read:
        return USAGE if all(result.usage for result in results) else UNREADABLE
    if len(read) < len(results) or any(result.failed_pages for result in read):
        return PARTIAL
    return OK


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"
