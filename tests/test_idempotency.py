"""The same request answered by the same job: Idempotency-Key, sharing in flight, result cache."""

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker

from tests.conftest import wait_for_job
from tests.corpus import write_png
from tests.test_jobs import form


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
