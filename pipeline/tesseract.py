"""A thin wrapper over the tesseract binary: one recognition per page, every renderer at once."""

import csv
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytesseract import pytesseract

from pipeline.errors import EngineFailure, PageTimeout
from pipeline.result import Line, Word

_WORD_LEVEL = "5"


@dataclass(frozen=True)
class Recognition:
    text: str
    lines: tuple[Line, ...]


def recognize(
    image: Path, *, out_base: Path, lang: str, psm: int, dpi: int, timeout: float
) -> Recognition:
    """Run Tesseract once on `image`, producing plain text and word boxes from the same pass."""
    config = f"--psm {psm} --dpi {dpi} -c tessedit_create_tsv=1"
    try:
        pytesseract.run_tesseract(
            str(image), str(out_base), extension="txt", lang=lang, config=config, timeout=timeout
        )
    except RuntimeError as exc:
        if "timeout" in str(exc):
            raise PageTimeout(f"recognition took longer than {timeout:g} s") from exc
        raise EngineFailure(f"tesseract failed: {exc}") from exc
    except (pytesseract.TesseractError, OSError, subprocess.SubprocessError) as exc:
        raise EngineFailure(f"tesseract failed: {exc}") from exc
    text = out_base.with_suffix(".txt").read_text(encoding="utf-8")
    tsv = out_base.with_suffix(".tsv").read_text(encoding="utf-8")
    return Recognition(text=text.strip("\f\n "), lines=parse_tsv(tsv))


def parse_tsv(tsv: str) -> tuple[Line, ...]:
    """Group Tesseract's TSV word rows into lines, in reading order."""
    lines: dict[tuple[str, str, str], list[Word]] = {}
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        text = (row.get("text") or "").strip()
        if row["level"] != _WORD_LEVEL or not text:
            continue
        left, top = int(row["left"]), int(row["top"])
        box = (left, top, left + int(row["width"]), top + int(row["height"]))
        word = Word(text=text, confidence=round(max(float(row["conf"]), 0.0), 2), bbox=box)
        lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(word)
    return tuple(Line(bbox=_union(words), words=tuple(words)) for words in lines.values())


def _union(words: list[Word]) -> tuple[int, int, int, int]:
    return (
        min(w.bbox[0] for w in words),
        min(w.bbox[1] for w in words),
        max(w.bbox[2] for w in words),
        max(w.bbox[3] for w in words),
    )
