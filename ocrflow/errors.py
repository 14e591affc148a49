"""ocrflow's failures: one base with a stable code, and every code the service gives.

What a code means to an HTTP caller (its status) is decided in one place, the HTTP edge
(`http/errors.py`); whether a run is tried again, by `retryable`. Failures of the pipeline have
codes of their own (`ocrflow.pipeline.errors.PipelineCode`).
"""

from enum import StrEnum
from typing import Any

from ocrflow.pipeline.errors import PipelineCode

__all__ = ["ErrorCode", "OcrflowError"]


class ErrorCode(StrEnum):
    # The request itself.
    MALFORMED_REQUEST = "malformed_request"
    REQUEST_TIMEOUT = "request_timeout"
    INVALID_OPTIONS = "invalid_options"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    URL_NOT_ALLOWED = "url_not_allowed"
    UNKNOWN_HANDLER = "unknown_handler"
    INVALID_HANDLER_PARAMS = "invalid_handler_params"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # Who is asking.
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PRIORITY_NOT_ALLOWED = "priority_not_allowed"
    # What it asks about.
    NOT_FOUND = "not_found"
    JOB_NOT_FOUND = "job_not_found"
    OUTPUT_NOT_FOUND = "output_not_found"
    UPLOAD_NOT_FOUND = "upload_not_found"
    UPLOAD_MISSING = "upload_missing"
    JOB_NOT_FINISHED = "job_not_finished"
    JOB_FAILED = "job_failed"
    JOB_FINISHED = "job_finished"
    JOB_NOT_RETRYABLE = "job_not_retryable"
    S3_STORAGE_REQUIRED = "s3_storage_required"
    # Limits and faults.
    RATE_LIMITED = "rate_limited"
    TOO_MANY_ACTIVE_JOBS = "too_many_active_jobs"
    TOO_MANY_STREAMS = "too_many_streams"
    BACKLOG_FULL = "backlog_full"
    SERVICE_UNAVAILABLE = "service_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    INSUFFICIENT_STORAGE = "insufficient_storage"
    OBJECT_NOT_FOUND = "object_not_found"
    INTERNAL_ERROR = "internal_error"
    # How a job's run can end besides the pipeline's own failures.
    TIMEOUT = "timeout"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    URL_FETCH_FAILED = "url_fetch_failed"
    URL_UNREACHABLE = "url_unreachable"
    # How a handler's run can end (recorded on the handler; the job keeps its OCR outputs).
    HANDLER_FAILED = "handler_failed"
    HANDLER_TIMEOUT = "handler_timeout"
    HANDLER_OUT_OF_MEMORY = "handler_out_of_memory"


class OcrflowError(Exception):
    """A failure with a stable `code`; `retryable` when trying again later may succeed,
    `retry_after` (seconds) when the caller should wait that long, `details` per field."""

    def __init__(
        self,
        code: ErrorCode | PipelineCode,
        message: str,
        *,
        retryable: bool = False,
        retry_after: int | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable
        self.retry_after, self.details = retry_after, details
