"""Job records in a real Redis, and settings as the environment gives them."""

import pytest
from redis.asyncio import Redis

from ocrflow.jobs.admission import Admission
from ocrflow.jobs.records import Job, JobState, JobStore, Progress, Source, new_job_id, now
from ocrflow.jobs.transitions import Transitions
from ocrflow.pipeline.options import OcrOptions
from ocrflow.settings import Settings


def a_job() -> Job:
    source = Source(filename="a.pdf", sha256="0" * 64, bytes=10, media_type="application/pdf")
    return Job(id=new_job_id(), created_at=now(), source=source, options=OcrOptions())


async def test_record_round_trips(redis: Redis, settings: Settings) -> None:
    settings = settings.model_copy(update={"job_retention": 60})
    job = a_job()
    await Admission(redis, settings).record(job)
    assert await JobStore(redis, retention=60).get(job.id) == job
    assert 0 < await redis.ttl(f"ocrflow:job:{job.id}") <= 60


async def test_terminal_state_is_never_overwritten(redis: Redis, settings: Settings) -> None:
    store = JobStore(redis, retention=60)
    job = a_job()
    await Admission(redis, settings).record(job)
    transitions = Transitions(redis, settings)
    running = frozenset({JobState.RUNNING})
    queued = frozenset({JobState.QUEUED})
    assert await transitions.apply(job.id, JobState.CANCELLED, only_from=queued)
    late = Progress(stage="ocr", pages_done=3)
    assert not await store.update(job.id, only_from=running, progress=late)
    assert not await transitions.apply(job.id, JobState.SUCCEEDED, only_from=running)
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.state is JobState.CANCELLED
    assert stored.progress.pages_done == 0


async def test_update_of_a_missing_job_is_refused(redis: Redis) -> None:
    assert not await JobStore(redis, retention=60).update("j_missing", state=JobState.RUNNING)


def test_job_ids_sort_by_creation_time() -> None:
    """Ids made in one burst (many in the same millisecond) come out in order: listings page
    through a caller's jobs by id."""
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 24 and i.startswith("j_") for i in ids)


def test_platform_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://render-kv:6379")
    monkeypatch.setenv("PORT", "10000")
    monkeypatch.setenv("OCRFLOW_OCR_LANGUAGES", "eng,deu")
    monkeypatch.setenv("OCRFLOW_MAX_PAGES", "42")
    settings = Settings(_env_file=None)
    assert settings.redis_url == "redis://render-kv:6379"
    assert settings.port == 10000
    assert settings.ocr_languages == ("eng", "deu")
    assert settings.runtime.max_pages == 42


def test_ocrflow_names_win_over_platform_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://platform")
    monkeypatch.setenv("OCRFLOW_REDIS_URL", "redis://mine")
    assert Settings(_env_file=None).redis_url == "redis://mine"


def test_dotenv_is_read_and_unknown_keys_ignored(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env_file = tmp_path / ".env"
    env_file.write_text("OCRFLOW_MAX_PAGES=7\nSOMETHING_ELSE=1\nOCRFLOW_NOT_A_SETTING=x\n")
    monkeypatch.delenv("OCRFLOW_MAX_PAGES", raising=False)
    assert Settings(_env_file=env_file).max_pages == 7


def test_s3_storage_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="OCRFLOW_S3_BUCKET"):
        Settings(_env_file=None, storage_backend="s3")
