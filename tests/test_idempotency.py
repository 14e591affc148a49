"""The same request answered by the same job: Idempotency-Key, sharing in flight, result cache."""

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.http.auth import ANONYMOUS
from ocrflow.http.state import SERVICES
from ocrflow.jobs import redis_keys
from ocrflow.jobs.idempotency import fingerprint
from ocrflow.settings import Settings
from tests.support import form, wait_for_job, write_png


async def post(
    client: TestClient[Any, Any], png: Path, key: str | None = None, **fields: str
) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post("/v1/jobs", data=form(png, **fields), headers=headers)


async def test_an_idempotency_key_returns_the_same_job(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    png = write_png(tmp_path / "p.png", ["idempotent"])
    first = await post(client, png, key="order-17")
    again = await post(client, png, key="order-17")
    assert first.status == again.status == 202
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Ocrflow-Reused"] == "idempotent"

    other = write_png(tmp_path / "other.png", ["something else"])
    misuse = await post(client, other, key="order-17")
    assert misuse.status == 422
    assert (await misuse.json())["error"]["code"] == "idempotency_key_reused"
    different_options = await post(client, png, key="order-17", outputs="text,pdf")
    assert different_options.status == 422


async def test_identical_submissions_in_flight_share_one_job(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    png = write_png(tmp_path / "p.png", ["shared"])
    first = await (await post(client, png)).json()
    second = await post(client, png)
    assert (await second.json())["id"] == first["id"]
    assert second.headers["Ocrflow-Reused"] == "shared"
    other_options = await (await post(client, png, outputs="csv")).json()
    assert other_options["id"] != first["id"]


async def test_a_submission_with_other_metadata_is_a_job_of_its_own(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    png = write_png(tmp_path / "p.png", ["credited to its own order"])
    a = await (await post(client, png, metadata='{"order": "A-1"}')).json()
    b = await (await post(client, png, metadata='{"order": "B-2"}')).json()
    assert a["id"] != b["id"]
    assert b["metadata"] == {"order": "B-2"}
    again = await post(client, png, metadata='{"order": "A-1"}')
    assert (await again.json())["id"] == a["id"]
    assert again.headers["Ocrflow-Reused"] == "shared"


async def test_identical_bytes_and_options_are_answered_from_the_cache(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "p.png", ["cached result"])
    first = await (await post(client, png)).json()
    assert (await wait_for_job(client, first["id"]))["state"] == "succeeded"

    response = await post(client, png)
    answered = await response.json()
    assert response.headers["Ocrflow-Reused"] == "cached"
    assert answered["id"] != first["id"]
    assert answered["state"] == "succeeded" and answered["cached"] is True
    text = await (await client.get(f"/v1/jobs/{answered['id']}/outputs/text")).text()
    assert text.split() == ["cached", "result"]
    fresh = await (await post(client, png, psm="6")).json()
    assert fresh["state"] == "queued" and fresh["cached"] is False


async def _in_flight_key(client: TestClient[Any, Any], job_id: str) -> str:
    services = client.server.app[SERVICES]
    job = await services.jobs.get(job_id)
    assert job is not None
    return fingerprint(job).in_flight_key


async def test_a_claim_left_by_an_ended_job_passes_to_the_next(
    client: TestClient[Any, Any], redis: Redis, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "p.png", ["claimed once"])
    first = await (await post(client, png)).json()
    claim = await _in_flight_key(client, first["id"])
    assert await redis.get(claim) == first["id"].encode()
    assert (await client.post(f"/v1/jobs/{first['id']}/cancel")).status == 200
    await redis.set(claim, first["id"])  # as if the claim had never been given back
    response = await post(client, png)
    second = await response.json()
    assert response.status == 202 and "Ocrflow-Reused" not in response.headers
    assert second["id"] != first["id"] and second["state"] == "queued"
    assert await redis.get(claim) == second["id"].encode()


async def test_a_refused_job_claims_nothing_and_ended_jobs_are_pruned_from_a_count(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    one_each = settings.model_copy(update={"max_active_jobs_per_caller": 1})
    client = await aiohttp_client(create_app(one_each))
    first = await (await post(client, write_png(tmp_path / "a.png", ["first"]))).json()
    second_png = write_png(tmp_path / "b.png", ["second"])
    refused = await post(client, second_png)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "too_many_active_jobs"
    assert await redis.keys("ocrflow:inflight:*") == [
        (await _in_flight_key(client, first["id"])).encode()
    ]
    # The first job's record expires without its place being given back: the count is pruned.
    await redis.delete(redis_keys.job_key(first["id"]))
    response = await post(client, second_png)
    assert response.status == 202 and "Ocrflow-Reused" not in response.headers
    second = await response.json()
    assert await redis.smembers(redis_keys.active_key(ANONYMOUS)) == {second["id"].encode()}
