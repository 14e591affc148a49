"""Patterns callers write (a field's `pattern`, a `pattern` rule), read by RE2: in time linear in
the text whatever the pattern, so `(a+)+$` over a page of `a`s costs what any pattern does and
never holds a worker. RE2's syntax is Python's less what needs backtracking: no backreferences
(`\\1`) and no lookaround (`(?=…)`, `(?<!…)`); such a pattern is refused at submission."""

from functools import cache
from typing import Any

import re2

MAX_LENGTH = 1000  # characters in one pattern
MAX_MEMORY = 8 * 1024 * 1024  # bytes RE2 may build a pattern's automaton in


@cache
def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Any:
    """The pattern compiled, or ValueError saying why it is not one ocrflow reads."""
    if len(pattern) > MAX_LENGTH:
        raise ValueError(f"a pattern is at most {MAX_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False  # a caller's mistake is the caller's answer, not the log's
    options.case_sensitive = not ignore_case
    options.max_mem = MAX_MEMORY
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"not a pattern ocrflow reads ({reason}); patterns are RE2: no backreferences or "
            "lookaround"
        ) from None
