"""The HTTP edge of failures: one JSON shape, and the one place where codes become statuses."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.pipeline.errors import PipelineCode, PipelineError

log = logging.getLogger(__name__)

Code = ErrorCode | PipelineCode
# Every code has its status: a code missing here fails at import, not as a quiet 400.
STATUS: dict[Code, int] = {
    ErrorCode.MALFORMED_REQUEST: 400,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.PRIORITY_NOT_ALLOWED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.OUTPUT_NOT_FOUND: 404,
    ErrorCode.UPLOAD_NOT_FOUND: 404,
    ErrorCode.OBJECT_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UPLOAD_MISSING: 409,
    ErrorCode.JOB_NOT_FINISHED: 409,
    ErrorCode.JOB_FAILED: 409,
    ErrorCode.JOB_FINISHED: 409,
    ErrorCode.JOB_NOT_RETRYABLE: 409,
    ErrorCode.S3_STORAGE_REQUIRED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.INVALID_OPTIONS: 422,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.URL_NOT_ALLOWED: 422,
    ErrorCode.UNKNOWN_HANDLER: 422,
    ErrorCode.INVALID_HANDLER_PARAMS: 422,
    ErrorCode.URL_FETCH_FAILED: 422,
    ErrorCode.URL_UNREACHABLE: 503,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_MANY_ACTIVE_JOBS: 429,
    ErrorCode.TOO_MANY_STREAMS: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
    ErrorCode.INSUFFICIENT_STORAGE: 507,
    ErrorCode.BACKLOG_FULL: 503,
    ErrorCode.TIMEOUT: 503,
    ErrorCode.TOO_MANY_ATTEMPTS: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.HANDLER_FAILED: 500,
    ErrorCode.HANDLER_TIMEOUT: 503,
    ErrorCode.HANDLER_OUT_OF_MEMORY: 500,
    PipelineCode.UNSUPPORTED_MEDIA_TYPE: 415,
    PipelineCode.UNSUPPORTED_LANGUAGE: 422,
    PipelineCode.INVALID_PDF: 422,
    PipelineCode.ENCRYPTED_PDF: 422,
    PipelineCode.INVALID_IMAGE: 422,
    PipelineCode.TOO_MANY_PAGES: 422,
    PipelineCode.PAGE_TOO_LARGE: 422,
    PipelineCode.PAGE_OUT_OF_MEMORY: 422,
    PipelineCode.PAGE_CRASHED: 422,
    PipelineCode.PAGE_TIMEOUT: 422,
    PipelineCode.OCR_ENGINE_ERROR: 503,
    PipelineCode.ALL_PAGES_FAILED: 422,
    PipelineCode.TEXT_LAYER_TOO_LARGE: 422,
    PipelineCode.RESULT_TOO_LARGE: 422,
}
_UNMAPPED = {*ErrorCode, *PipelineCode} - STATUS.keys()
if _UNMAPPED:
    raise AssertionError(f"error codes without an HTTP status: {sorted(_UNMAPPED)}")
# Codes for errors aiohttp raises itself (unknown route, wrong method, body too large).
CODE_BY_STATUS = {
    400: ErrorCode.MALFORMED_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}
UNAVAILABLE_RETRY_AFTER = 5
AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="ocrflow"'}


def error_response(
    code: Code,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return web.json_response({"error": body}, status=STATUS[code], headers=headers)


def _headers(exc: OcrflowError) -> dict[str, str]:
    headers = dict(AUTHENTICATE) if exc.code is ErrorCode.UNAUTHORIZED else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    elif exc.code is ErrorCode.INSUFFICIENT_STORAGE:
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return headers


def _unavailable(what: str) -> web.Response:
    return error_response(
        ErrorCode.SERVICE_UNAVAILABLE,
        f"{what} is unavailable; try again shortly",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(
    request: web.Request,
    handler: Route,  # the route, under the name aiohttp's middleware protocol gives it
) -> web.StreamResponse:
    try:
        return await handler(request)
    except OcrflowError as exc:
        if exc.code is ErrorCode.STORAGE_UNAVAILABLE:
            log.warning("storage failed during %s %s: %s", request.method, request.path, exc)
            return _unavailable("storage")
        response = error_response(exc.code, exc.message, details=exc.details, headers=_headers(exc))
        if exc.code is ErrorCode.REQUEST_TIMEOUT:
            response.force_close()  # what is left of the body is not worth waiting for
        return response
    except PipelineError as exc:
        return error_response(exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = CODE_BY_STATUS.get(exc.status)
        if code is None:
            raise
        kept = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
        return error_response(code, exc.reason, headers=kept)
    except (RedisError, ConnectionError) as exc:
        log.warning("redis unavailable during %s %s: %s", request.method, request.path, exc)
        return _unavailable("the job queue")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(ErrorCode.INTERNAL_ERROR, "internal error")
