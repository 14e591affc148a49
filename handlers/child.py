"""One handler's run, in a process of its own: `python -m ocrflow.handlers.child`.

The worker writes the request (JSON) to standard input. This process caps its own memory, loads
the handler through its entry point, runs it, and answers on standard output, one JSON object a
line: `started` (with the handler's own timeout), then any number of `progress` and `output`,
then one `summary` or `error`. Whatever the handler prints goes to standard error, which the
worker logs.
"""

import asyncio
import json
import os
import resource
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ocrflow.errors import ErrorCode
from ocrflow.handlers.api import Document, HandlerFailed, Summary, check_output_name
from ocrflow.pipeline.options import OcrOptions
from ocrflow.pipeline.result import PageResult
from ocrflow.runtime.deathsig import die_with_parent

if TYPE_CHECKING:
    from ocrflow.settings import Settings

T = TypeVar("T")
MAX_SUMMARY_BYTES = 16 * 1024
MAX_OUTPUTS = 20


class Messages:
    """The answer channel to the worker: JSON lines on what was standard output."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def send(self, kind: str, value: Any) -> None:
        self._stream.write(json.dumps({kind: value}) + "\n")
        self._stream.flush()


class ChildContext:
    """The `Context` a handler gets in its own process."""

    def __init__(self, out_dir: Path, earlier: Mapping[str, Summary], messages: Messages) -> None:
        self._out_dir = out_dir
        self._earlier = earlier
        self._messages = messages
        self._before = {path.name for path in out_dir.iterdir()}  # earlier handlers' outputs
        self._written: list[str] = []
        self._settings: Settings | None = None

    @property
    def settings(self) -> "Settings":
        if self._settings is None:
            from ocrflow.settings import Settings

            self._settings = Settings()
        return self._settings

    @property
    def earlier(self) -> Mapping[str, Summary]:
        return self._earlier

    def write(self, name: str, data: bytes | str, media_type: str | None = None) -> None:
        check_output_name(name)
        if name in self._before:
            raise HandlerFailed(f"output {name!r} was written by an earlier handler of this job")
        if name not in self._written and len(self._written) >= MAX_OUTPUTS:
            raise HandlerFailed(f"a handler may write at most {MAX_OUTPUTS} outputs")
        path = self._out_dir / name
        partial = path.with_name(f".{name}.partial")
        partial.write_bytes(data.encode() if isinstance(data, str) else data)
        partial.rename(path)
        if name not in self._written:
            self._written.append(name)
            self._messages.send("output", {"name": name, "media_type": media_type})

    def read(self, name: str) -> bytes | None:
        if name not in self._before and name not in self._written:
            return None
        return (self._out_dir / name).read_bytes()

    async def progress(self, message: str, fraction: float | None = None) -> None:
        progress: dict[str, Any] = {"message": str(message)[:500]}
        if fraction is not None:
            progress["fraction"] = round(min(max(float(fraction), 0.0), 1.0), 4)
        self._messages.send("progress", progress)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)


def run(request: Mapping[str, Any], messages: Messages) -> None:
    from ocrflow.handlers import registry

    handler = registry.load(request["handler"])
    messages.send("started", {"timeout": handler.timeout})
    params = handler.params.model_validate(request["params"])
    job = request["job"]
    result = json.loads(Path(request["result"]).read_text(encoding="utf-8"))
    document = Document(
        job_id=job["id"],
        filename=job["filename"],
        pages=tuple(PageResult.from_json(page) for page in result["pages"]),
        options=OcrOptions.model_validate(job["options"]),
        metadata=job["metadata"],
    )
    del result
    context = ChildContext(Path(request["out_dir"]), request["earlier"], messages)

    async def handle() -> Summary:
        return await handler.run(document, params, context)

    summary = asyncio.run(handle())
    try:
        text = json.dumps(dict(summary))
    except (TypeError, ValueError) as exc:
        raise HandlerFailed(f"the summary is not a JSON object: {exc}") from exc
    if len(text) > MAX_SUMMARY_BYTES:
        raise HandlerFailed(f"the summary is larger than {MAX_SUMMARY_BYTES // 1024} KiB")
    messages.send("summary", json.loads(text))


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    # The answers keep standard output to themselves; a handler's prints go to standard error.
    messages = Messages(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ["OMP_THREAD_LIMIT"] = "1"
    die_with_parent()
    if request["memory_limit"]:
        limit = request["memory_limit"]
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        run(request, messages)
    except HandlerFailed as exc:
        messages.send("error", {"code": ErrorCode.HANDLER_FAILED, "message": str(exc)})
    except MemoryError:
        limit_mib = request["memory_limit"] // (1024 * 1024)
        message = f"the handler needed more than its {limit_mib} MiB (OCRFLOW_HANDLER_MEMORY_LIMIT)"
        messages.send("error", {"code": ErrorCode.HANDLER_OUT_OF_MEMORY, "message": message})
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}"[:2000]
        messages.send("error", {"code": ErrorCode.HANDLER_FAILED, "message": message})


if __name__ == "__main__":
    main()
