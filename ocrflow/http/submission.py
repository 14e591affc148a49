"""What a submission says, from a form or a JSON body, checked field by field and made into a
job: its options, handlers, metadata, priority, callback and e-mail address."""

import asyncio
import json
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from yarl import URL

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.handlers import registry
from ocrflow.http.auth import NOTIFY_EMAIL, caller
from ocrflow.http.multipart import Pace, Upload
from ocrflow.http.state import SERVICES
from ocrflow.jobs.records import HandlerRun, Job, Priority, Source, new_job_id, now
from ocrflow.nesting import check_nesting
from ocrflow.pipeline.options import OcrOptions, check_languages
from ocrflow.runtime.addresses import AddressNotAllowed, check_url
from ocrflow.settings import Settings

JSON_BODY_LIMIT = 1024 * 1024  # the most any JSON body may be (aiohttp's client_max_size)
MAX_METADATA_BYTES = 16 * 1024
MAX_DETAILS = 20
LIST_FIELDS = frozenset({"languages", "outputs"})
JOB_FIELDS = frozenset(
    {"priority", "metadata", "callback_url", "url", "notify_email", "notify", "handlers"}
)
EMAIL = re.compile(r"[^@\s<>\"(),;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
BOOLEAN_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def job_from_fields(request: web.Request, fields: dict[str, list[str]], source: Source) -> Job:
    """The caller's new job from submitted fields (form or JSON), for a source described."""
    settings = request.app[SERVICES].settings
    options = parse_options(fields, settings.default_options)
    check_languages(options)
    return Job(
        id=new_job_id(),
        owner=caller(request),
        created_at=now(),
        priority=_priority(fields, caller(request), settings),
        source=source,
        options=options,
        metadata=parse_metadata(fields),
        handlers={
            name: HandlerRun(params=params)
            for name, params in parse_handlers(fields, settings.handlers).items()
        },
        callback_url=_callback_url(fields, settings.allow_private_urls),
        notify_email=_email(fields, request.get(NOTIFY_EMAIL)),
    )


def source_of(fields: dict[str, list[str]], upload: Upload | None, allow_private: bool) -> Source:
    if upload is not None:
        return Source(
            filename=upload.filename,
            sha256=upload.sha256,
            bytes=upload.size,
            media_type=upload.media_type,
        )
    if "url" not in fields:
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, "a JSON submission needs a `url`")
    url = _checked_url(fields["url"][-1], "url", allow_private)
    return Source(kind="url", url=url, filename=URL(url).name or str(URL(url).host))


def _email(fields: dict[str, list[str]], token_email: str | None) -> str | None:
    """`notify_email`, or with `notify=true` the address in the caller's token."""
    notify = fields.get("notify", ["false"])[-1].lower()
    if notify not in BOOLEAN_TEXT:
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, "notify must be true or false")
    if "notify_email" not in fields:
        if not BOOLEAN_TEXT[notify]:
            return None
        if token_email is None:
            raise OcrflowError(
                ErrorCode.INVALID_OPTIONS, "notify=true needs a token with an e-mail claim"
            )
        return token_email
    address = fields["notify_email"][-1].strip()
    if not EMAIL.fullmatch(address):
        raise OcrflowError(
            ErrorCode.INVALID_OPTIONS, f"notify_email {address[:100]!r} is not an e-mail address"
        )
    return address


def _callback_url(fields: dict[str, list[str]], allow_private: bool) -> str | None:
    if "callback_url" not in fields:
        return None
    return _checked_url(fields["callback_url"][-1], "callback_url", allow_private)


def _checked_url(raw: str, name: str, allow_private: bool) -> str:
    url = raw.strip()
    try:
        check_url(URL(url), allow_private=allow_private)
    except (AddressNotAllowed, ValueError) as exc:
        raise OcrflowError(ErrorCode.URL_NOT_ALLOWED, f"{name} refused: {exc}") from exc
    return url


def _priority(fields: dict[str, list[str]], who: str, settings: Settings) -> Priority:
    value = fields.get("priority", [Priority.NORMAL])[-1]
    if value not in Priority.__members__.values():
        names = ", ".join(Priority)
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, f"priority must be one of {names}")
    if value == Priority.HIGH and not settings.may_use_high_priority(who):
        raise OcrflowError(
            ErrorCode.PRIORITY_NOT_ALLOWED,
            "high priority is for the callers in OCRFLOW_HIGH_PRIORITY_CALLERS",
        )
    return Priority(value)


def parse_options(fields: dict[str, list[str]], defaults: OcrOptions) -> OcrOptions:
    """Form fields to validated options; repeated or comma/plus-separated lists both work."""
    given: dict[str, Any] = {}
    for name, values in fields.items():
        if name in JOB_FIELDS:
            continue
        if name in LIST_FIELDS:
            given[name] = [v.strip() for raw in values for v in re.split(r"[,+\s]+", raw) if v]
        else:
            given[name] = values[-1]
    try:
        return OcrOptions.model_validate({**defaults.model_dump(), **given})
    except ValidationError as exc:
        raise invalid_options(exc) from exc


def invalid_options(exc: ValidationError) -> OcrflowError:
    details = [
        {"field": ".".join(str(p) for p in error["loc"]), "message": _complaint(error)}
        for error in exc.errors()[:MAX_DETAILS]
    ]
    return OcrflowError(ErrorCode.INVALID_OPTIONS, "the job options are invalid", details=details)


def _complaint(error: Any) -> str:
    """pydantic's message, and what was given when it is a short scalar."""
    given = error.get("input")
    if isinstance(given, str | int | float | bool) and len(str(given)) <= 40:
        return f"{error['msg']}, not {given!r}"
    return str(error["msg"])


class JsonOptions(BaseModel):
    """A JSON body's job fields, strictly typed: a wrong type is a 422 naming the field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    languages: str | list[str] | None = None
    outputs: str | list[str] | None = None
    dpi: int | None = None
    psm: int | None = None
    force_ocr: bool | None = None
    rotate: bool | None = None
    deskew: bool | None = None
    rescale: bool | None = None
    priority: str | None = None
    metadata: dict[str, Any] | None = None
    handlers: dict[str, dict[str, Any]] | list[str] | str | None = None
    callback_url: str | None = None
    notify_email: str | None = None
    notify: bool | None = None


class JsonSubmission(JsonOptions):
    url: str


class UploadStart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    filename: str | None = None


async def json_fields(request: web.Request, shape: type[BaseModel]) -> dict[str, list[str]]:
    """A JSON body checked against `shape`, in the form of form fields, so both kinds of
    submission go through the same parsing."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "the body must be a JSON object")
    try:
        given = shape.model_validate(body).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise invalid_options(exc) from exc
    return {name: [_as_text(value)] for name, value in given.items()}


async def read_json(request: web.Request) -> Any:
    """The JSON body; 400 for anything that is not JSON, nested past reason included; 408 for
    one that comes slower than an upload may."""
    allowed = Pace.GRACE + JSON_BODY_LIMIT / Pace.MIN_RATE
    try:
        async with asyncio.timeout(allowed):
            return await request.json()
    except TimeoutError as exc:
        message = f"the body came too slowly (more than {allowed:.0f} s)"
        raise OcrflowError(ErrorCode.REQUEST_TIMEOUT, message) from exc
    except ValueError as exc:
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "the body is not valid JSON") from exc
    except RecursionError as exc:
        raise OcrflowError(
            ErrorCode.MALFORMED_REQUEST, "the JSON body is nested too deeply"
        ) from exc


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def parse_handlers(fields: dict[str, list[str]], allow_list: tuple[str, ...]) -> dict[str, Any]:
    """The handlers a job runs after recognition, each allowed and its parameters checked."""
    if "handlers" not in fields:
        return {}
    # Checked first (a field is at most 64 KiB, a JSON body 1 MiB), then held to the size
    # the job record keeps.
    checked = registry.check_requests(registry.parse_requests(fields["handlers"][-1]), allow_list)
    if len(json.dumps(checked)) > MAX_METADATA_BYTES:
        message = f"`handlers` is larger than {MAX_METADATA_BYTES // 1024} KiB"
        raise OcrflowError(ErrorCode.PAYLOAD_TOO_LARGE, message)
    return checked


def parse_metadata(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The job's metadata, as small on every way in: it is kept with the job, in every
    listing, callback and e-mail."""
    if "metadata" not in fields:
        return {}
    raw = fields["metadata"][-1]
    if len(raw.encode()) > MAX_METADATA_BYTES:
        message = f"`metadata` is larger than {MAX_METADATA_BYTES // 1024} KiB"
        raise OcrflowError(ErrorCode.PAYLOAD_TOO_LARGE, message)
    check_nesting(raw, "metadata")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, "`metadata` must be a JSON object") from exc
    if not isinstance(metadata, dict):
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, "`metadata` must be a JSON object")
    return metadata
