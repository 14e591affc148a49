"""Every Redis key, storage key and arq function name ocrflow uses, in one place."""

JOB_PREFIX = "ocrflow:job:"
JOB_INDEX_PREFIX = "ocrflow:jobs:"  # one sorted index of job ids per caller

PROCESS_JOB = "process_job"
SEND_CALLBACK = "send_callback"
SEND_EMAIL = "send_email"

EVENTS_PREFIX = "ocrflow:events:"
ALL_EVENTS = "ocrflow:events"  # the capped stream of every job's events, for dashboards
EVENTS_CHANNEL = "ocrflow:events:live"  # pub/sub: wakes listeners; the streams are the truth


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def job_index(owner: str) -> str:
    return JOB_INDEX_PREFIX + owner


RUNNING = "ocrflow:running"  # hash: job id -> arq job id, for every run under way
QUEUED = "ocrflow:queued"  # hash: job id -> arq job id, for every run waiting to start
LEASE_PREFIX = "ocrflow:lease:"
REAP_PREFIX = "ocrflow:reap:"
ARQ_IN_PROGRESS = "arq:in-progress:"  # arq's own claim on a job it runs (arq.constants)
ARQ_JOB = "arq:job:"


def lease_key(job_id: str) -> str:
    return LEASE_PREFIX + job_id


def events_key(job_id: str) -> str:
    return EVENTS_PREFIX + job_id


def arq_job_id(job_id: str, run: int) -> str:
    """arq refuses a job id it still holds, so each explicit run of a job gets its own."""
    return f"{job_id}:{run}"


def source_key(job_id: str) -> str:
    return f"jobs/{job_id}/source"


def output_key(job_id: str, filename: str) -> str:
    return f"jobs/{job_id}/outputs/{filename}"
