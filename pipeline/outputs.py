"""Writing a document's results to files: text, JSON, hOCR, a per-page CSV, a searchable PDF."""

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrflow.pipeline.errors import AllPagesFailed, PipelineError
from ocrflow.pipeline.hocr import HOCR_HEAD, HOCR_TAIL, hocr_page
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import Output
from ocrflow.pipeline.result import PageResult
from ocrflow.pipeline.sheets import safe_cell

FILENAMES: dict[Output, str] = {
    "text": "text.txt",
    "json": "result.json",
    "hocr": "hocr.html",
    "csv": "pages.csv",
    "pdf": "searchable.pdf",
}
MEDIA_TYPES: dict[Output, str] = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "hocr": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
PAGE_BREAK = "\f"
CSV_COLUMNS = ("number", "method", "confidence", "words", "seconds", "error")


def check_pages(pages: Sequence[PageResult]) -> None:
    """Raise when no page could be read, with the pages' own code when they agree."""
    failed = [page.error for page in pages if page.error]
    if not pages or len(failed) < len(pages):
        return
    codes = {error.code for error in failed}
    if len(codes) == 1:
        raise PipelineError(failed[0].message, code=failed[0].code)
    raise AllPagesFailed(f"none of the {len(pages)} pages could be read")


@dataclass(frozen=True)
class Totals:
    """What the JSON result says of the whole document, gathered before its pages are written
    (a document read in ranges adds up its parts')."""

    page_count: int = 0
    words: int = 0
    confidence_sum: float = 0.0
    confident_pages: int = 0

    @classmethod
    def of(cls, pages: Sequence[PageResult]) -> "Totals":
        scores = [page.confidence for page in pages if page.confidence is not None]
        return cls(len(pages), sum(page.words for page in pages), sum(scores), len(scores))

    def __add__(self, other: "Totals") -> "Totals":
        return Totals(
            self.page_count + other.page_count,
            self.words + other.words,
            self.confidence_sum + other.confidence_sum,
            self.confident_pages + other.confident_pages,
        )

    def head(self) -> dict[str, Any]:
        scored = self.confident_pages
        confidence = round(self.confidence_sum / scored, 2) if scored else None
        return {"page_count": self.page_count, "confidence": confidence, "words": self.words}


def output_files(out_dir: Path, names: Iterable[Output]) -> dict[Output, Path]:
    """Where each named output goes in a directory of one document's outputs."""
    return {name: out_dir / FILENAMES[name] for name in dict.fromkeys(names)}


def document_json(pages: Sequence[PageResult]) -> dict[str, Any]:
    return Totals.of(pages).head() | {"pages": [page.to_json() for page in pages]}


class OutputWriter:
    """Writes the named outputs a batch of pages at a time, in page order, each file once:
    the merge of a document read in ranges never holds more than one range's pages. What it
    writes is what it would for all the pages at once, byte for byte."""

    def __init__(
        self,
        files: Mapping[Output, Path],
        *,
        source: Path,
        media_type: MediaType,
        totals: Totals,
        pages_only: bool = False,
    ) -> None:
        self.files = dict(files)
        self._handles = {
            name: path.open("w", encoding="utf-8", newline="")
            for name, path in self.files.items()
            if name != "pdf"
        }
        pdf = self.files.get("pdf")
        self._pdf = None
        if pdf:
            # pypdf is imported where a PDF is written (a pool process), not by every command.
            from ocrflow.pipeline.searchable import SearchablePdf

            self._pdf = SearchablePdf(source, media_type, pdf, added_only=pages_only)
        table = self._handles.get("csv")
        self._csv = csv.DictWriter(table, fieldnames=CSV_COLUMNS) if table else None
        self._first = True
        self._write("json", json.dumps(totals.head(), ensure_ascii=False)[:-1] + ', "pages": [')
        self._write("hocr", HOCR_HEAD)
        if self._csv:
            self._csv.writeheader()

    def add(self, pages: Sequence[PageResult]) -> None:
        for page in pages:
            self._write("text", ("" if self._first else PAGE_BREAK) + page.text)
            gap = "" if self._first else ", "
            self._write("json", gap + json.dumps(page.to_json(), ensure_ascii=False))
            self._write("hocr", hocr_page(page) + "\n")
            if self._csv:
                self._csv.writerow({k: safe_cell(v) for k, v in page.summary().items()})
            if self._pdf:
                self._pdf.add(page)
            self._first = False

    def close(self) -> dict[Output, Path]:
        self._write("text", "\n")
        self._write("json", "]}")
        self._write("hocr", HOCR_TAIL)
        for handle in self._handles.values():
            handle.close()
        if self._pdf:
            self._pdf.close()
        return self.files

    def _write(self, name: Output, text: str) -> None:
        if name in self._handles:
            self._handles[name].write(text)


def write_outputs(
    pages: Sequence[PageResult],
    out_dir: Path,
    names: Iterable[Output],
    *,
    source: Path,
    media_type: MediaType,
) -> dict[Output, Path]:
    """Write each named output into `out_dir`; returns the files by output name."""
    files = output_files(out_dir, names)
    return write_files(pages, files, source=source, media_type=media_type)


def write_files(
    pages: Sequence[PageResult],
    files: Mapping[Output, Path],
    *,
    source: Path,
    media_type: MediaType,
    pages_only: bool = False,
) -> dict[Output, Path]:
    """Write each output to its file, pages in page order; returns the files by output name.
    `pages_only`: the searchable PDF holds these pages alone (a selection was read)."""
    ordered = sorted(pages, key=lambda page: page.number)
    totals = Totals.of(ordered)
    writer = OutputWriter(
        files, source=source, media_type=media_type, totals=totals, pages_only=pages_only
    )
    writer.add(ordered)
    return writer.close()
