"""Tab-separated word boxes, as both Tesseract (`tsv` renderer) and `pdftotext -tsv` write them.

Both write one row per element, a level first: 1 a page, 2-4 the blocks, paragraphs and
lines that group the words, 5 a word; then the element's numbers, its box as left, top,
width, height, a confidence (-1 on the rows that are not words) and the word's text. Tesseract
writes whole pixels and pdftotext fractional points; boxes are rounded to whole units.
"""

from dataclasses import dataclass

from ocrflow.pipeline.result import Box, Line, Word

_COLUMNS = 12
_PAGE = b"1"
_WORD = b"5"


@dataclass(frozen=True)
class TextPage:
    width: float
    height: float
    lines: tuple[Line, ...]


def parse_tsv(data: bytes) -> list[TextPage]:
    """The pages in `data`, each with its words grouped into lines in reading order.

    A line ends at the next row that is not a word; words without text are left out. The
    header row, a missing trailing newline and a row cut short or damaged are passed over.
    """
    pages: list[tuple[float, float, list[Line]]] = []
    words: list[Word] = []
    scores: dict[bytes, float] = {}  # pdftotext scores every word 100: convert it once
    for row in data.split(b"\n"):
        try:
            cells = row.split(b"\t", _COLUMNS - 1)
            if len(cells) < _COLUMNS:
                continue
            level = cells[0]
            if level == _WORD:
                text = cells[11].strip()
                if text:
                    left, top = float(cells[6]), float(cells[7])
                    box = (
                        int(left + 0.5),
                        int(top + 0.5),
                        int(left + float(cells[8]) + 0.5),
                        int(top + float(cells[9]) + 0.5),
                    )
                    confidence = scores.get(cells[10])
                    if confidence is None:
                        confidence = scores[cells[10]] = round(max(float(cells[10]), 0.0), 2)
                    words.append(Word(text.decode("utf-8", "replace"), confidence, box))
                continue
            if words:
                _close(words, pages)
                words = []
            if level == _PAGE:
                pages.append((float(cells[8]), float(cells[9]), []))
        except ValueError:  # a number that is not one: the row is damaged, not the page
            continue
    if words:
        _close(words, pages)
    return [TextPage(width, height, tuple(lines)) for width, height, lines in pages]


def _close(words: list[Word], pages: list[tuple[float, float, list[Line]]]) -> None:
    if not pages:  # words before any page row: a page of unknown size
        pages.append((0.0, 0.0, []))
    pages[-1][2].append(line_of(words))


def line_of(words: list[Word]) -> Line:
    """A line of `words`, its box the union of theirs."""
    lefts, tops, rights, bottoms = zip(*[word.bbox for word in words], strict=True)
    box: Box = (min(lefts), min(tops), max(rights), max(bottoms))
    return Line(bbox=box, words=tuple(words))
