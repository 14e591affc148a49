"""How deep a caller's JSON text nests, read in one linear pass before anything parses it: a
document nested thousands deep would exhaust the parser's recursion, and one nested hundreds deep
the serializer's, long after its upload was stored."""

import re

from ocrflow.errors import ErrorCode, OcrflowError

MAX_NESTING = 32  # arrays and objects inside one another, in metadata and handler parameters
# A whole string (escapes included), or a bracket: strings are skipped whole, so a bracket
# inside one does not count. No part can match the same text two ways: linear time.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str, most: int = MAX_NESTING) -> int:
    """The deepest nesting of arrays and objects in `text`, read no further than past `most`."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > most:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def check_nesting(text: str, field: str) -> None:
    """422 naming the field when `text` nests deeper than ocrflow keeps."""
    if json_depth(text) > MAX_NESTING:
        raise OcrflowError(
            ErrorCode.INVALID_OPTIONS,
            f"`{field}` nests deeper than {MAX_NESTING} levels of arrays and objects",
            details=[{"field": field, "message": f"at most {MAX_NESTING} levels deep"}],
        )
