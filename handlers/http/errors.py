"""HTTP errors: one JSON shape, and the one place where failures become statuses."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from ocrflow.handlers.storage.backend import StorageError
from ocrflow.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "malformed_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "job_not_found": 404,
    "output_not_found": 404,
    "upload_not_found": 404,
    "upload_missing": 409,
    "method_not_allowed": 405,
    "job_not_finished": 409,
    "job_failed": 409,
    "job_finished": 409,
    "job_not_retryable": 409,
    "s3_storage_required": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_options": 422,
    "idempotency_key_reused": 422,
    "url_not_allowed": 422,
    "unsupported_language": 422,
    "rate_limited": 429,
    "too_many_active_jobs": 429,
    "service_unavailable": 503,
    "backlog_full": 503,
}
# Codes for errors aiohttp raises itself (unknown route, wrong method, body too large).
CODE_BY_STATUS = {
    400: "malformed_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
UNAVAILABLE_RETRY_AFTER = "5"


class ApiError(Exception):
    """A failure the caller caused or can act on, with a stable code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE.get(code, 400)
        self.details = details
        self.headers = headers

    def response(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return web.json_response({"error": body}, status=self.status, headers=self.headers)


def from_pipeline(exc: PipelineError) -> ApiError:
    return ApiError(exc.code, exc.message)


def unavailable(what: str) -> ApiError:
    return ApiError(
        "service_unavailable",
        f"{what} is unavailable; try again shortly",
        headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except PipelineError as exc:
        return from_pipeline(exc).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = CODE_BY_STATUS.get(exc.status, "http_error")
        body = {"error": {"code": code, "message": exc.reason}}
        kept = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
        return web.json_response(body, status=exc.status, headers=kept)
    except (RedisError, ConnectionError) as exc:
        log.warning("redis unavailable during %s %s: %s", request.method, request.path, exc)
        return unavailable("the job queue").response()
    except StorageError as exc:
        log.warning("storage failed during %s %s: %s", request.method, request.path, exc)
        return unavailable("storage").response()
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        body = {"error": {"code": "internal_error", "message": "internal error"}}
        return web.json_response(body, status=500)
