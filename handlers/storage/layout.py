"""Where a job's files live in storage; keys are made here from ids, never from caller input."""

JOBS = "jobs/"
UPLOADS = "uploads/"


def job_prefix(job_id: str) -> str:
    return f"{JOBS}{job_id}/"


def source_key(job_id: str) -> str:
    return f"{JOBS}{job_id}/source"


def output_key(job_id: str, filename: str) -> str:
    return f"{JOBS}{job_id}/outputs/{filename}"


def parts_prefix(job_id: str) -> str:
    """Where the parts of a document read in ranges are kept until its outputs are merged."""
    return f"{JOBS}{job_id}/parts/"


def part_key(job_id: str, run: int, name: str) -> str:
    return f"{JOBS}{job_id}/parts/{run}/{name}.json"


def upload_key(upload_id: str) -> str:
    """A direct upload's object until it is completed into a job."""
    return UPLOADS + upload_id


def is_own(prefix: str, key: str) -> bool:
    """Whether a bucket `key` is one ocrflow writes (a job's files or a direct upload) under
    its storage `prefix`."""
    return key.startswith((prefix + JOBS, prefix + UPLOADS))
