"""What recognition yields: pages of lines of words, each with a box and a confidence."""

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, NamedTuple

from ocrflow.pipeline.errors import PipelineCode

Box = tuple[int, int, int, int]  # left, top, right, bottom
Method = Literal["text-layer", "ocr"]


# Words and lines are named tuples: a page holds thousands, and they cross process boundaries.
class Word(NamedTuple):
    text: str
    confidence: float
    bbox: Box


class Line(NamedTuple):
    bbox: Box
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


@dataclass(frozen=True)
class PageError:
    code: PipelineCode
    message: str


@dataclass(frozen=True)
class PageResult:
    number: int
    method: Method
    width: int
    height: int
    dpi: int
    text: str
    lines: tuple[Line, ...] = ()
    seconds: float = 0.0
    error: PageError | None = None
    # How the page image was turned before recognition: boxes are in the turned image, whose
    # size is width x height; the image as rendered or scanned was source_size.
    rotation: int = 0
    skew: float = 0.0
    source_size: tuple[int, int] = (0, 0)

    @property
    def words(self) -> int:
        return sum(len(line.words) for line in self.lines)

    @property
    def confidence(self) -> float | None:
        """Mean word confidence (0-100), or None for a page without words."""
        scores = [word.confidence for line in self.lines for word in line.words]
        return round(sum(scores) / len(scores), 2) if scores else None

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle calls back into Python for every named tuple, and a page holds thousands of
        # them: as plain tuples its words cross to another process in a third of the time.
        state = {field.name: getattr(self, field.name) for field in fields(self)}
        state["lines"] = tuple((line.bbox, tuple(map(tuple, line.words))) for line in self.lines)
        return (_unpickle_page, (state,))

    def state(self) -> dict[str, Any]:
        """Every field as JSON takes it: what a range's part in storage holds (nothing in it
        runs as code, unlike a pickle), and what `from_state` rebuilds the page from."""
        state: dict[str, Any] = self.__reduce__()[1][0]
        state["error"] = asdict(self.error) if self.error else None
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PageResult":
        """The page `state()` gave, after a JSON round trip (lists where tuples were)."""
        error = state["error"]
        return cls(
            **state
            | {
                "lines": tuple(
                    Line(tuple(box), tuple([Word(t, c, tuple(b)) for t, c, b in words]))
                    for box, words in state["lines"]
                ),
                "error": PageError(PipelineCode(error["code"]), error["message"])
                if error
                else None,
                "source_size": tuple(state["source_size"]),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "method": self.method,
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "rotation": self.rotation,
            "skew": self.skew,
            "confidence": self.confidence,
            "words": self.words,
            "seconds": round(self.seconds, 3),
            "error": asdict(self.error) if self.error else None,
            "text": self.text,
            "lines": [
                {
                    "text": line.text,
                    "bbox": line.bbox,
                    "words": [word._asdict() for word in line.words],
                }
                for line in self.lines
            ],
        }

    @classmethod
    def from_json(cls, page: dict[str, Any]) -> "PageResult":
        """The page `to_json()` wrote (a page of a job's JSON result), as the pipeline made it;
        `source_size` is not written there."""
        error = page.get("error")
        return cls(
            number=page["number"],
            method=page["method"],
            width=page["width"],
            height=page["height"],
            dpi=page["dpi"],
            text=page["text"],
            lines=tuple(
                Line(
                    tuple(line["bbox"]),
                    tuple(
                        Word(w["text"], w["confidence"], tuple(w["bbox"])) for w in line["words"]
                    ),
                )
                for line in page["lines"]
            ),
            seconds=page.get("seconds", 0.0),
            error=PageError(PipelineCode(error["code"]), error["message"]) if error else None,
            rotation=page.get("rotation", 0),
            skew=page.get("skew", 0.0),
        )

    def summary(self) -> dict[str, Any]:
        """The per-page figures without the text, for progress events and the CSV."""
        return {
            "number": self.number,
            "method": self.method,
            "confidence": self.confidence,
            "words": self.words,
            "seconds": round(self.seconds, 3),
            "error": self.error.code if self.error else None,
        }


def _unpickle_page(state: dict[str, Any]) -> PageResult:
    state["lines"] = tuple(
        Line(box, tuple([Word(*word) for word in words])) for box, words in state["lines"]
    )
    return PageResult(**state)
