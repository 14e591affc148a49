"""Where a job's files live in storage; keys are made here from ids, never from caller input."""

import mimetypes
from typing import cast

from ocrflow.pipeline.outputs import FILENAMES, MEDIA_TYPES

JOBS = "jobs/"
UPLOADS = "uploads/"


def job_prefix(job_id: str) -> str:
    return f"{JOBS}{job_id}/"


def source_key(job_id: str) -> str:
    return f"{JOBS}{job_id}/source"


def output_key(job_id: str, filename: str) -> str:
    return f"{JOBS}{job_id}/outputs/{filename}"


def handler_output_key(job_id: str, name: str) -> str:
    """A handler's output (its name checked by `ocrflow.handlers.api.check_output_name`)."""
    return f"{JOBS}{job_id}/handlers/{name}"


def output_media_type(name: str) -> str:
    """An OCR output's type by its name (`pdf`), a handler's by its file name (`fields.csv`)."""
    known = cast("dict[str, str]", MEDIA_TYPES).get(name)
    return known or mimetypes.guess_type(name)[0] or "application/octet-stream"


def download_name(name: str) -> str:
    """The file name an output is downloaded as (after the document's own name)."""
    return cast("dict[str, str]", FILENAMES).get(name, name)


def preview_key(job_id: str, number: int) -> str:
    """A page's picture, kept by the worker that read it (served by the page-image route)."""
    return f"{JOBS}{job_id}/previews/{number:05d}.jpg"


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
