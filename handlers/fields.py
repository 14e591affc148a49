"""The built-in `fields` handler: named values found beside or below a label, or by a pattern,
out as `fields.json` and `fields.csv` with value, confidence, page and box."""

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ocrflow.handlers.api import Context, Document, Handler
from ocrflow.handlers.patterns import compile_pattern
from ocrflow.pipeline.pages import in_pages, parse_pages
from ocrflow.pipeline.result import Box, Line, PageResult, Word
from ocrflow.pipeline.sheets import csv_text

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
# A gap wider than this many line heights ends a value on its line (the next column begins).
COLUMN_GAP = 2.5
MAX_GAP = 40.0  # label heights a value may sit right of its label (a column of values)
Pattern = Any  # a compiled pattern (RE2's, which has no type stubs)
# A value below its label starts within this many line heights of the label's line.
BELOW_REACH = 2.5


class FieldSpec(BaseModel):
    """One field: found by its label (the value beside or below it), by a pattern, or both (the
    pattern then picks the value out of what is beside or below the label)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="the field's name in the outputs: letters, digits, `_`, `.`, `-`; up to 64",
        json_schema_extra={"pattern": FIELD_NAME.pattern},
    )
    label: str | list[str] | None = Field(
        None, description="the label the value sits by, or several ways it is written"
    )
    pattern: str | None = Field(
        None,
        description="a regular expression (RE2: no backreferences or lookaround) the value must "
        "match; its first group, if any, is the "
        "value. Without a label it is looked for over the whole page",
    )
    position: Literal["auto", "right", "below"] = Field(
        "auto",
        description="where the value sits from its label: `right` (on the label's line), "
        "`below` (the lines under it), `auto` (right, else below)",
    )
    lines: Annotated[int, Field(ge=1, le=20)] = Field(
        1, description="below a label: how many lines the value may take (an address)"
    )
    max_gap: Annotated[float, Field(gt=0, le=200)] = Field(
        MAX_GAP,
        description="beside a label: how far its value may sit from it, in label heights (the "
        "height of the label's line; 40 is about 4 inches of 10-point text at any resolution). "
        "Within the value, words are never further apart than 2.5 heights",
    )
    pages: str | None = Field(None, description='only these pages: "1", "1-3,7", "2-"')
    region: tuple[float, float, float, float] | None = Field(
        None,
        description="only this part of the page: left, top, right, bottom as fractions (0-1) "
        "of the page's width and height",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FIELD_NAME.match(value):
            raise ValueError("a field name is letters, digits, '_', '.' or '-', up to 64")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    @field_validator("pages")
    @classmethod
    def _pages(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_pages(value)
            except ValueError as exc:
                raise ValueError(f"pages are numbers and ranges, e.g. 1-3,7 or 2-: {exc}") from None
        return value

    @field_validator("region")
    @classmethod
    def _region(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is not None:
            left, top, right, bottom = value
            if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
                raise ValueError("a region is left, top, right, bottom as fractions of the page")
        return value

    @model_validator(mode="after")
    def _something_to_find(self) -> "FieldSpec":
        if not self.label and not self.pattern:
            raise ValueError("a field needs a label, a pattern, or both")
        return self

    @property
    def labels(self) -> list[str]:
        if self.label is None:
            return []
        return [self.label] if isinstance(self.label, str) else list(self.label)

    def on(self, number: int) -> bool:
        return self.pages is None or in_pages(parse_pages(self.pages), number)


class FieldsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: Annotated[list[FieldSpec], Field(max_length=200)] = Field(
        default_factory=list, description="the fields to find (each below)"
    )
    pairs: bool = Field(
        False,
        description="also every `Label: value` pair the pages hold, with no labels given (to see "
        "what a form holds before writing `fields`): `pairs` in fields.json, rows in fields.csv",
    )
    min_similarity: Annotated[float, Field(ge=0.5, le=1.0)] = Field(
        0.8,
        description="how alike OCR's words must be to a label: 1 is exact; lower forgives "
        "misread letters",
    )

    @model_validator(mode="after")
    def _something_to_find(self) -> "FieldsParams":
        if not self.fields and not self.pairs:
            raise ValueError("give `fields`, or `pairs: true`, or both")
        return self

    @field_validator("fields")
    @classmethod
    def _unique(cls, value: list[FieldSpec]) -> list[FieldSpec]:
        names = [spec.name for spec in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"field names must differ: {', '.join(twice)}")
        return value


@dataclass(frozen=True)
class Found:
    value: str
    confidence: float | None
    page: int
    box: Box
    label_similarity: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "confidence": self.confidence,
            "page": self.page,
            "box": list(self.box),
            "label_similarity": self.label_similarity,
        }


@lru_cache(maxsize=1 << 16)  # the same words come back on every page and for every field
def normalize(text: str) -> str:
    """What a label is compared as: letters and digits, case and accents folded."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def find_fields(document: Document, params: FieldsParams) -> dict[str, Found | None]:
    return {spec.name: find(document.pages, spec, params.min_similarity) for spec in params.fields}


def find(pages: Sequence[PageResult], spec: FieldSpec, min_similarity: float) -> Found | None:
    pattern = compile_pattern(spec.pattern) if spec.pattern else None
    for page in pages:
        if not spec.on(page.number):
            continue
        lines = _within(page, spec.region)
        found = (
            _by_label(page, lines, spec, pattern, min_similarity)
            if spec.labels
            else _by_pattern(page, lines, pattern)
        )
        if found is not None:
            return found
    return None


def _within(page: PageResult, region: tuple[float, float, float, float] | None) -> list[Line]:
    """The page's lines, holding only their words whose middles lie in `region`."""
    if region is None or not page.width or not page.height:
        return list(page.lines)
    left, top, right, bottom = region
    lines = []
    for line in page.lines:
        words = tuple(
            word
            for word in line.words
            if left <= (word.bbox[0] + word.bbox[2]) / 2 / page.width <= right
            and top <= (word.bbox[1] + word.bbox[3]) / 2 / page.height <= bottom
        )
        if words:
            box = (
                min(w.bbox[0] for w in words),
                min(w.bbox[1] for w in words),
                max(w.bbox[2] for w in words),
                max(w.bbox[3] for w in words),
            )
            lines.append(Line(box, words))
    return lines


@dataclass(frozen=True)
class _Label:
    similarity: float
    line: int
    start: int
    end: int  # words [start, end) of the line


def _labels(lines: Sequence[Line], labels: Iterable[str], min_similarity: float) -> list[_Label]:
    """Every run of words on a line that reads like one of the labels, best first."""
    found = []
    for label in labels:
        wanted = normalize(label)
        if not wanted:
            continue
        count = max(1, len(label.split()))
        matcher = SequenceMatcher(None, b=wanted, autojunk=False)  # b is the one it indexes
        # A run of words whose letters are too few or too many cannot be similar enough:
        # 2 * min(a, b) / (a + b) bounds the ratio.
        shortest = math.ceil(len(wanted) * min_similarity / (2 - min_similarity))
        longest = math.floor(len(wanted) * (2 - min_similarity) / min_similarity)
        for index, line in enumerate(lines):
            words = [normalize(word.text) for word in line.words]
            for start in range(len(words)):
                # OCR may join two words or split one: a word more or less than the label has.
                for end in range(start + max(1, count - 1), min(len(words), start + count + 1) + 1):
                    seen = "".join(words[start:end])
                    if not shortest <= len(seen) <= longest:
                        continue
                    matcher.set_seq1(seen)
                    # A cheap upper bound first: most runs of words are nothing like it.
                    if matcher.quick_ratio() < min_similarity:
                        continue
                    similarity = matcher.ratio()
                    if similarity >= min_similarity:
                        found.append(_Label(round(similarity, 3), index, start, end))
    found.sort(key=lambda label: (-label.similarity, label.line, label.start))
    return found


def _by_label(
    page: PageResult,
    lines: Sequence[Line],
    spec: FieldSpec,
    pattern: Pattern | None,
    min_similarity: float,
) -> Found | None:
    for label in _labels(lines, spec.labels, min_similarity):
        places = ("right", "below") if spec.position == "auto" else (spec.position,)
        for place in places:
            words = (
                _right_of(lines, label, spec.max_gap)
                if place == "right"
                else _below(lines, label, spec.lines)
            )
            found = _value(page, words, pattern, label.similarity)
            if found is not None:
                return found
    return None


def _right_of(lines: Sequence[Line], label: _Label, max_gap: float) -> list[Word]:
    """The value after the label in its row: past the rest of the printed label (`Customer ID:`
    for the label `Customer`) and across a gap of up to `max_gap` label heights (a value in a
    column of its own), the run of words up to the next wide gap. Never a label: a run that
    reads as one (`Date:`) is the next field's, and the value is not beside this label. The
    words may sit on lines of their own: Tesseract splits a row at a wide gap or where its
    baseline wavers."""
    line = lines[label.line]
    height = max(1, line.bbox[3] - line.bbox[1])
    top, bottom = line.words[label.start].bbox[1], line.words[label.end - 1].bbox[3]
    end = line.words[label.end - 1].bbox[2]
    beside = [*line.words[label.end :]]
    for index, other in enumerate(lines):
        if index != label.line and _same_height(other.bbox, top, bottom):
            beside.extend(word for word in other.words if word.bbox[0] >= end)
    beside.sort(key=lambda word: word.bbox[0])
    if not line.words[label.end - 1].text.endswith(":"):
        end, beside = _past_label(beside, end, height)
    words: list[Word] = []
    previous = end
    for word in beside:
        gap = word.bbox[0] - previous
        if not words and not normalize(word.text):  # a lone ':' after the label is not the value
            previous = word.bbox[2]
            continue
        if gap > (COLUMN_GAP if words else max_gap) * height:
            break
        words.append(word)
        previous = word.bbox[2]
    return [] if _reads_as_label(words) else words


def _past_label(beside: list[Word], end: int, height: int) -> tuple[int, list[Word]]:
    """The printed label may go on past the words that matched (`Customer ID:` for `Customer`):
    up to two close words ending with a colon are the label's, not its value."""
    previous = end
    for index, word in enumerate(beside[:2]):
        if word.bbox[0] - previous > COLUMN_GAP * height:
            break
        if word.text.endswith(":"):
            return word.bbox[2], beside[index + 1 :]
        previous = word.bbox[2]
    return end, beside


def _reads_as_label(words: Sequence[Word]) -> bool:
    """A run that begins as a label does (a word of its first three ends with a colon)."""
    return any(word.text.endswith(":") and len(word.text) > 1 for word in words[:3])


def _same_height(box: Box, top: int, bottom: int) -> bool:
    """Whether a box's middle lies between `top` and `bottom`."""
    return top <= (box[1] + box[3]) / 2 <= bottom


def _below(lines: Sequence[Line], label: _Label, count: int = 1) -> list[Word]:
    """The words under the label: on the nearest line below it, and on up to `count - 1` more
    lines, each right under the one before."""
    line = lines[label.line]
    left, right = line.words[label.start].bbox[0], line.words[label.end - 1].bbox[2]
    height = max(1, line.bbox[3] - line.bbox[1])
    bottom, words = line.bbox[3], []
    for _ in range(count):
        run = _run_under(lines, left, right, bottom, height)
        if not run:
            break
        words.extend(run)
        left, right = min(left, run[0].bbox[0]), max(right, run[-1].bbox[2])
        bottom = max(word.bbox[3] for word in run)
    return words


def _run_under(
    lines: Sequence[Line], left: int, right: int, bottom: int, height: int
) -> list[Word]:
    """On the nearest line starting below `bottom` (within reach), the run of words that sits
    under `left`..`right`, split from other columns at wide gaps."""
    below = [
        other
        for other in lines
        if bottom <= other.bbox[1] + height / 2
        and other.bbox[1] - bottom <= BELOW_REACH * height
        and other.bbox[0] < right + height
        and other.bbox[2] > left - height
    ]
    if not below:
        return []
    nearest = min(below, key=lambda other: other.bbox[1])
    runs: list[list[Word]] = []
    for word in nearest.words:
        if runs and word.bbox[0] - runs[-1][-1].bbox[2] <= COLUMN_GAP * height:
            runs[-1].append(word)
        else:
            runs.append([word])
    under = [run for run in runs if run[0].bbox[0] < right + height and run[-1].bbox[2] > left]
    return under[0] if under and not _reads_as_label(under[0]) else []


def _by_pattern(page: PageResult, lines: Sequence[Line], pattern: Pattern | None) -> Found | None:
    for line in lines:
        found = _value(page, list(line.words), pattern, None)
        if found is not None:
            return found
    return None


def _value(
    page: PageResult,
    words: Sequence[Word],
    pattern: Pattern | None,
    similarity: float | None,
) -> Found | None:
    """The value among `words`: all of them, or what the pattern matches (its first group)."""
    if not words:
        return None
    text = " ".join(word.text for word in words)
    start, end = 0, len(text)
    if pattern is not None:
        match = pattern.search(text)
        if match is None:
            return None
        group = 1 if pattern.groups else 0
        start, end = match.span(group)
    chosen, offset = [], 0
    for word in words:  # the words the value's characters fall in
        if offset < end and offset + len(word.text) > start:
            chosen.append(word)
        offset += len(word.text) + 1
    value = text[start:end].strip()
    if not value or not chosen:
        return None
    confidence = round(sum(word.confidence for word in chosen) / len(chosen), 2)
    box = (
        min(word.bbox[0] for word in chosen),
        min(word.bbox[1] for word in chosen),
        max(word.bbox[2] for word in chosen),
        max(word.bbox[3] for word in chosen),
    )
    return Found(value, confidence, page.number, box, similarity)


Pair = tuple[str, Found]  # a label as printed (without its colon), and its value


def find_pairs(pages: Sequence[PageResult]) -> list[Pair]:
    """Every `Label: value` the pages hold, in reading order: a run of up to five words ending
    with a colon, and its value found as a named field's would be (beside, else below)."""
    pairs: list[Pair] = []
    for page in pages:
        lines = list(page.lines)
        for index, line in enumerate(lines):
            start = 0
            while (label := _next_label(line, index, start)) is not None:
                words = _right_of(lines, label, MAX_GAP) or _below(lines, label)
                found = _value(page, words, None, None)
                text = " ".join(word.text for word in line.words[label.start : label.end])
                if found is not None:
                    pairs.append((text.rstrip(":").strip(), found))
                beside = [word for word in words if word in line.words[label.end :]]
                start = line.words.index(beside[-1]) + 1 if beside else label.end
    return pairs


def _next_label(line: Line, index: int, start: int) -> _Label | None:
    for end in range(start, len(line.words)):
        word = line.words[end].text
        if word.endswith(":") and normalize(word) and not normalize(word).isdigit():
            first = max(start, end - 4)
            return _Label(1.0, index, first, end + 1)
    return None


def fields_csv(found: dict[str, Found | None], pairs: Sequence[Pair] = ()) -> str:
    header = ["field", "value", "confidence", "page", "left", "top", "right", "bottom"]
    rows = [
        [name, "", "", "", "", "", "", ""]
        if item is None
        else [name, item.value, item.confidence, item.page, *item.box]
        for name, item in [*found.items(), *pairs]
    ]
    return csv_text(header, rows)


def fields_json(found: dict[str, Found | None], pairs: Sequence[Pair] | None = None) -> str:
    document: dict[str, Any] = {
        "fields": {name: item.to_json() if item else None for name, item in found.items()}
    }
    if pairs is not None:
        document["pairs"] = [{"label": label} | item.to_json() for label, item in pairs]
    return json.dumps(document, ensure_ascii=False, indent=1)


async def run(document: Document, params: FieldsParams, context: Context) -> dict[str, Any]:
    found = await context.run(find_fields, document, params)
    pairs = await context.run(find_pairs, document.pages) if params.pairs else None
    context.write("fields.json", fields_json(found, pairs), "application/json")
    context.write("fields.csv", fields_csv(found, pairs or ()), "text/csv")
    missing = [name for name, item in found.items() if item is None]
    summary: dict[str, Any] = {"found": len(found) - len(missing), "missing": missing}
    if pairs is not None:
        summary["pairs"] = len(pairs)
    return summary


handler = Handler(
    name="fields",
    run=run,
    params=FieldsParams,
    description="named values beside or below a label, or by a pattern, and (pairs: true) every "
    "Label: value pair: fields.json, fields.csv",
)
