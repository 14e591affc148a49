"""A document read in ranges: each range's pages kept as a part (a JSON file), and the parts
merged, a range at a time, into the document's outputs."""

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ocrflow.pipeline.errors import AllPagesFailed, PipelineCode, PipelineError, ResultTooLarge
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import Output
from ocrflow.pipeline.outputs import OutputWriter, Totals, output_files
from ocrflow.pipeline.result import PageResult


def save_part(pages: Sequence[PageResult], path: Path) -> Path:
    """`pages` as a part: their states in page order, with what the merge needs of them
    before reading them (totals, and which failed)."""
    ordered = sorted(pages, key=lambda page: page.number)
    part = {
        "totals": asdict(Totals.of(ordered)),
        "failed": [
            [page.number, page.error.code, page.error.message] for page in ordered if page.error
        ],
        "pages": [page.state() for page in ordered],
    }
    path.write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
    return path


def _load(path: Path) -> dict[str, Any]:
    part: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return part


def _pages(part: dict[str, Any]) -> list[PageResult]:
    return [PageResult.from_state(state) for state in part["pages"]]


def merge_parts(
    text: Path,
    ranges: Sequence[Path],
    out_dir: Path,
    names: Sequence[Output],
    *,
    source: Path,
    media_type: MediaType,
    max_words: int,
) -> dict[Output, Path]:
    """The outputs of a document from its parts: `text` (the pages its text layers answered,
    anywhere in the document) and `ranges` (recognised pages, each part a run of pages, in
    page order). Only the text part and one range are held at a time. Fails as the document
    read in one go would: when every page failed, or past the document's word limit."""
    heads = [_head(path) for path in (text, *ranges)]
    totals = sum((Totals(**head["totals"]) for head in heads), Totals())
    _check(totals, [failure for head in heads for failure in head["failed"]], max_words)
    writer = OutputWriter(
        output_files(out_dir, names), source=source, media_type=media_type, totals=totals
    )
    answered = _pages(_load(text))
    for batch in _in_page_order(answered, ranges):
        writer.add(batch)
    return writer.close()


def _head(path: Path) -> dict[str, Any]:
    part = _load(path)
    return {"totals": part["totals"], "failed": part["failed"]}


def _check(totals: Totals, failed: list[list[Any]], max_words: int) -> None:
    if totals.words > max_words:
        raise ResultTooLarge(f"the document holds more than {max_words} words")
    if totals.page_count and len(failed) == totals.page_count:
        codes = {code for _, code, _ in failed}
        if len(codes) == 1:
            raise PipelineError(failed[0][2], code=PipelineCode(failed[0][1]))
        raise AllPagesFailed(f"none of the {totals.page_count} pages could be read")


def _in_page_order(
    answered: list[PageResult], ranges: Sequence[Path]
) -> Iterator[list[PageResult]]:
    """Batches in page order: each range's pages with the answered pages up to its end."""
    pending = sorted(answered, key=lambda page: page.number)
    for path in ranges:
        recognised = _pages(_load(path))
        last = recognised[-1].number if recognised else 0
        ahead = [page for page in pending if page.number <= last]
        pending = pending[len(ahead) :]
        yield sorted(ahead + recognised, key=lambda page: page.number)
    yield pending
