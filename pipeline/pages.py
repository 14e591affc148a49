"""Page numbers as people write them, `1-3,7,10-`, read in linear time (no pattern that can
backtrack: the text comes from callers)."""

Span = tuple[int, int | None]  # first and last page; None: to the document's end

MAX_TEXT = 1000


def parse_pages(text: str) -> tuple[Span, ...]:
    """`1-3,7,10-` as spans; ValueError naming the part that is not a page or a range."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"a page list is at most {MAX_TEXT} characters")
    spans: list[Span] = []
    for part in "".join(text.split()).split(","):
        first, dash, last = part.partition("-")
        if not _number(first) or (last and not _number(last)):
            raise ValueError(f"{part!r} is not a page or a range")
        start = int(first)
        stop = (int(last) if last else None) if dash else start
        if start < 1 or (stop is not None and stop < start):
            raise ValueError(f"{part!r} is no range of pages (they count from 1)")
        spans.append((start, stop))
    return tuple(spans)


def in_pages(spans: tuple[Span, ...], number: int) -> bool:
    return any(start <= number and (stop is None or number <= stop) for start, stop in spans)


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9
