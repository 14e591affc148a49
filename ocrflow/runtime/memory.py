"""Giving freed memory back to the system: after a large document, glibc keeps the pages it
freed in its arenas, and a long-lived worker would hold its largest document's peak for good."""

import contextlib
import ctypes


def release_freed() -> None:
    """Return free heap pages to the system (glibc's malloc_trim; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
