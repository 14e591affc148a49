"""What a handler is given and what it may do: the interface a plug-in is written against."""

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from ocrflow.pipeline.options import OUTPUTS, OcrOptions
from ocrflow.pipeline.result import Line, PageResult, Word

if TYPE_CHECKING:
    from ocrflow.settings import Settings

__all__ = ["Context", "Document", "Handler", "HandlerFailed", "Line", "Word"]

OUTPUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESERVED = frozenset({*OUTPUTS, "result"})  # the OCR outputs' names

P = TypeVar("P", bound=BaseModel)
P_in = TypeVar("P_in", bound=BaseModel, contravariant=True)
T = TypeVar("T")
Summary = Mapping[str, Any]  # small and JSON: it is kept on the job and sent in callbacks


class HandlerFailed(Exception):
    """Raised by a handler to fail with a message of its own (and no traceback in the log)."""


@dataclass(frozen=True)
class Document:
    """The job as a handler sees it: its recognised pages, options and metadata."""

    job_id: str
    filename: str
    pages: tuple[PageResult, ...]
    options: OcrOptions
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\f".join(page.text for page in self.pages)

    def page(self, number: int) -> PageResult | None:
        return next((page for page in self.pages if page.number == number), None)


class Context(Protocol):
    """What a running handler can reach."""

    @property
    def settings(self) -> "Settings": ...

    @property
    def earlier(self) -> Mapping[str, Summary]:
        """The summaries of the handlers that ran before this one in the same job."""
        ...

    def write(self, name: str, data: bytes | str, media_type: str | None = None) -> None:
        """Keep an output: stored beside the OCR outputs, listed in the job document and
        served at /v1/jobs/{id}/outputs/{name}. `name` is a file name (`fields.json`)."""
        ...

    def read(self, name: str) -> bytes | None:
        """An output an earlier handler of this job wrote, or None."""
        ...

    async def progress(self, message: str, fraction: float | None = None) -> None:
        """Announce progress on the job's event stream (a `handler` event)."""
        ...

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking or CPU-heavy work off the handler's event loop, so its progress
        events keep flowing."""
        ...


class Run(Protocol[P_in]):
    def __call__(
        self, document: Document, params: P_in, context: Context
    ) -> Awaitable[Summary]: ...


@dataclass(frozen=True)
class Handler(Generic[P]):
    """A plug-in: register an instance under the `ocrflow.handlers` entry-point group.

    `run` is awaited with the job's document, its parameters (validated with `params` when the
    job is submitted) and a context; it returns a small JSON summary, kept on the job.
    """

    name: str
    run: Run[P]
    params: type[P]
    description: str = ""
    # At most this long (seconds), and never past the setting OCRFLOW_HANDLER_TIMEOUT.
    timeout: float | None = None


def check_output_name(name: str) -> str:
    """A handler's output name: a plain file name, not one of the OCR outputs'."""
    if not OUTPUT_NAME.match(name) or name in RESERVED or ".." in name:
        raise HandlerFailed(
            f"{name!r} cannot name an output: a file name of letters, digits, '.', '-' and "
            f"'_' is needed, and not one of {', '.join(sorted(RESERVED))}"
        )
    return name
