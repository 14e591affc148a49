"""Which handlers are installed (entry points), which may run (OCRFLOW_HANDLERS), and what a job
asks of them, checked before anything is stored."""

import json
import logging
import re
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.handlers.api import Handler
from ocrflow.nesting import check_nesting

log = logging.getLogger(__name__)

GROUP = "ocrflow.handlers"
MAX_HANDLERS = 8  # a job runs at most this many
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_DETAILS = 20


@cache
def installed() -> dict[str, EntryPoint]:
    """Every handler an installed package registers, by name (the first of a name wins)."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        if point.name in found:
            log.warning("handler %r is registered twice; %s is used", point.name, found[point.name])
            continue
        found[point.name] = point
    return found


def allowed(allow_list: tuple[str, ...]) -> list[str]:
    """The installed handlers jobs may name."""
    names = sorted(installed())
    return names if "*" in allow_list else [name for name in names if name in allow_list]


@cache
def load(name: str) -> Handler[Any]:
    """The handler registered as `name`; OcrflowError when none is, or it is not a Handler."""
    point = installed().get(name)
    if point is None:
        raise OcrflowError(ErrorCode.UNKNOWN_HANDLER, f"no handler named {name!r} is installed")
    handler = point.load()
    if not isinstance(handler, Handler) or handler.name != name:
        raise OcrflowError(
            ErrorCode.UNKNOWN_HANDLER,
            f"the entry point {point.value!r} for handler {name!r} is not an "
            f"ocrflow Handler named {name!r}",
        )
    return handler


def parse_requests(raw: str) -> dict[str, Any]:
    """The `handlers` field: a JSON object (name -> parameters, in the order they run), a JSON
    list of names, or names separated by commas."""
    text = raw.strip()
    if text.startswith(("{", "[")):
        check_nesting(text, "handlers")
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OcrflowError(
                ErrorCode.INVALID_OPTIONS, f"`handlers` is not valid JSON: {exc.msg}"
            ) from exc
        if isinstance(given, list) and all(isinstance(name, str) for name in given):
            return {name: {} for name in given}
        if isinstance(given, dict):
            return given
        raise OcrflowError(
            ErrorCode.INVALID_OPTIONS,
            "`handlers` must be an object of names to parameters, or a list of names",
        )
    return {name.strip(): {} for name in text.split(",") if name.strip()}


def check_requests(requests: Mapping[str, Any], allow_list: tuple[str, ...]) -> dict[str, Any]:
    """Each named handler installed and allowed, its parameters valid: name -> parameters as
    the handler's model made them (JSON)."""
    if len(requests) > MAX_HANDLERS:
        raise OcrflowError(
            ErrorCode.INVALID_OPTIONS, f"a job may run at most {MAX_HANDLERS} handlers"
        )
    permitted = allowed(allow_list)
    checked: dict[str, Any] = {}
    for name, params in requests.items():
        if not NAME.match(name) or name not in permitted:
            available = ", ".join(permitted) or "none"
            raise OcrflowError(
                ErrorCode.UNKNOWN_HANDLER,
                f"no handler named {name!r} may run here (available: {available})",
                details=[{"field": f"handlers.{name}", "message": "unknown handler"}],
            )
        try:
            handler = load(name)
        except OcrflowError:
            raise
        except Exception as exc:  # installed, but its package is broken: say so, not a 500
            log.exception("handler %r cannot be loaded", name)
            raise OcrflowError(
                ErrorCode.UNKNOWN_HANDLER,
                f"handler {name!r} is installed but cannot be loaded: {type(exc).__name__}",
            ) from exc
        try:
            # Strictly, as JSON: what the OpenAPI document describes is what is taken.
            text = json.dumps({} if params is None else params)
            model = handler.params.model_validate_json(text, strict=True)
        except ValidationError as exc:
            details = [
                {
                    "field": ".".join(["handlers", name, *map(str, error["loc"])]),
                    "message": str(error["msg"]),
                }
                for error in exc.errors()[:MAX_DETAILS]
            ]
            raise OcrflowError(
                ErrorCode.INVALID_HANDLER_PARAMS,
                f"the parameters of handler {name!r} are invalid",
                details=details,
            ) from exc
        checked[name] = model.model_dump(mode="json", exclude_unset=True)
    return checked
