"""Logging: plain text on a terminal, one JSON object a line elsewhere; the job id on every
line written while a job runs."""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from yarl import URL

current_job: ContextVar[str | None] = ContextVar("current_job", default=None)


class JobFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            line["job_id"] = job_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure(level: str, *, json_lines: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobFilter())
    if json_lines if json_lines is not None else not sys.stderr.isatty():
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


# Query parameters that carry credentials: ocrflow's own (`access_token` on the event feeds)
# and those of presigned or signed links a caller may hand over.
SECRET_PARAMETERS = frozenset(
    {
        "access_token",
        "token",
        "api_key",
        "apikey",
        "key",
        "password",
        "secret",
        "signature",
        "sig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
REDACTED = "redacted"


def redact_url(url: str) -> str:
    """`url` fit for a log line: no user name or password, no credential in its query."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return REDACTED
    if parsed.user is not None or parsed.password is not None:
        parsed = parsed.with_user(None)
    if any(name.lower() in SECRET_PARAMETERS for name in parsed.query):
        query = [
            (name, REDACTED if name.lower() in SECRET_PARAMETERS else value)
            for name, value in parsed.query.items()
        ]
        parsed = parsed.with_query(query)
    return str(parsed)
