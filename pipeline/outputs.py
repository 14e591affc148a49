"""Writing a document's results to files: text, JSON, hOCR, a per-page CSV, a searchable PDF."""

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ocrflow.pipeline.errors import AllPagesFailed, PipelineError
from ocrflow.pipeline.hocr import hocr_document
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import Output
from ocrflow.pipeline.result import PageResult
from ocrflow.pipeline.searchable import write_searchable_pdf

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


def document_json(pages: Sequence[PageResult]) -> dict[str, Any]:
    scores = [page.confidence for page in pages if page.confidence is not None]
    return {
        "page_count": len(pages),
        "confidence": round(sum(scores) / len(scores), 2) if scores else None,
        "words": sum(page.words for page in pages),
        "pages": [page.to_json() for page in pages],
    }


def write_text(pages: Sequence[PageResult], path: Path) -> None:
    path.write_text(PAGE_BREAK.join(page.text for page in pages) + "\n", encoding="utf-8")


def write_json(pages: Sequence[PageResult], path: Path) -> None:
    path.write_text(json.dumps(document_json(pages), ensure_ascii=False), encoding="utf-8")


def write_csv(pages: Sequence[PageResult], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(page.summary() for page in pages)


def write_hocr(pages: Sequence[PageResult], path: Path) -> None:
    path.write_text(hocr_document(pages), encoding="utf-8")


WRITERS: dict[Output, Callable[[Sequence[PageResult], Path], None]] = {
    "text": write_text,
    "json": write_json,
    "hocr": write_hocr,
    "csv": write_csv,
}


def write_outputs(
    pages: Sequence[PageResult],
    out_dir: Path,
    names: Iterable[Output],
    *,
    source: Path,
    media_type: MediaType,
) -> dict[Output, Path]:
    """Write each named output for pages in page order; returns the files by output name."""
    ordered = sorted(pages, key=lambda page: page.number)
    written: dict[Output, Path] = {}
    for name in dict.fromkeys(names):
        path = out_dir / FILENAMES[name]
        if name == "pdf":
            write_searchable_pdf(ordered, source, media_type, path)
        else:
            WRITERS[name](ordered, path)
        written[name] = path
    return written
