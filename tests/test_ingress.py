"""What the ingress refuses, and how: JSON errors with stable codes and the right statuses."""

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.http import jobs as api
from ocrflow.http.multipart import MEMORY_BYTES
from ocrflow.jobs.sources import clean_filename
from ocrflow.settings import Settings
from ocrflow.storage import layout
from ocrflow.storage.local import LocalStorage
from tests.support import form, submit, write_png


async def error_of(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


async def queue_length(redis: Redis, settings: Settings) -> int:
    return int(await redis.zcard(settings.queue_name))


async def test_unsupported_type_is_415_whatever_the_name_says(
    client: TestClient[Any, Any], tmp_path: Path, redis: Redis, settings: Settings
) -> None:
    fake = tmp_path / "notes.pdf"
    fake.write_text("just some text pretending to be a PDF\n")
    error = await error_of(await client.post("/v1/jobs", data=form(fake)), 415)
    assert error["code"] == "unsupported_media_type"
    assert await queue_length(redis, settings) == 0


async def test_empty_file_is_415(client: TestClient[Any, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    error = await error_of(await client.post("/v1/jobs", data=form(empty)), 415)
    assert error["code"] == "unsupported_media_type"


@pytest.mark.parametrize("limit", [4096, MEMORY_BYTES + 4096], ids=["in-memory", "spooled"])
async def test_upload_over_the_limit_is_413(
    aiohttp_client: Any, settings: Settings, tmp_path: Path, redis: Redis, limit: int
) -> None:
    from ocrflow.http.app import create_app

    small = settings.model_copy(update={"max_upload_bytes": limit})
    client = await aiohttp_client(create_app(small))
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (limit + 100_000))
    error = await error_of(await client.post("/v1/jobs", data=form(big)), 413)
    assert error["code"] == "payload_too_large"
    assert await queue_length(redis, small) == 0
    assert not list((small.work_dir / "incoming").glob("*")), "the spooled upload was left behind"


@pytest.mark.parametrize("padding", [0, 2 * MEMORY_BYTES], ids=["in-memory", "spooled"])
async def test_stored_source_is_the_upload(
    client: TestClient[Any, Any], settings: Settings, tmp_path: Path, padding: int
) -> None:
    """Small uploads go to storage from memory, large ones through a spool file: either way the
    stored source is the bytes sent, and nothing stays in the spool."""
    png = write_png(tmp_path / "p.png", ["stored as sent"])
    png.write_bytes(png.read_bytes() + bytes(range(256)) * (padding // 256))
    response = await client.post("/v1/jobs", data=form(png))
    assert response.status == 202, await response.text()
    job = await response.json()
    stored = LocalStorage(settings.storage_dir).local_path(layout.source_key(job["id"]))
    assert stored is not None and stored.read_bytes() == png.read_bytes()
    assert job["source"]["bytes"] == png.stat().st_size
    assert not list((settings.work_dir / "incoming").glob("*")), "a spool file was left behind"


async def test_unknown_job_is_404(client: TestClient[Any, Any]) -> None:
    for path in ("/v1/jobs/j_doesnotexist", "/v1/jobs/j_x/result", "/v1/jobs/j_x/outputs/text"):
        error = await error_of(await client.get(path), 404)
        assert error["code"] == "job_not_found"
    error = await error_of(await client.get("/v1/nothing-here"), 404)
    assert error["code"] == "not_found"


async def test_missing_file_part_is_400(client: TestClient[Any, Any]) -> None:
    data = aiohttp.FormData(default_to_multipart=True)
    data.add_field("languages", "eng")
    data.add_field("other", "x")
    error = await error_of(await client.post("/v1/jobs", data=data), 400)
    assert error["code"] == "malformed_request"


async def test_other_bodies_are_refused(client: TestClient[Any, Any]) -> None:
    error = await error_of(
        await client.post("/v1/jobs", data=b"x", headers={"Content-Type": "text/plain"}), 415
    )
    assert error["code"] == "unsupported_media_type"
    error = await error_of(await client.post("/v1/jobs", json={"file": "x"}), 422)
    assert error["code"] == "invalid_options"
    error = await error_of(await client.post("/v1/jobs", json=["http://example.com"]), 400)
    assert error["code"] == "malformed_request"
    bad_json = await client.post(
        "/v1/jobs", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (await error_of(bad_json, 400))["code"] == "malformed_request"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"dpi": "5"}, "dpi"),
        ({"psm": "0"}, "psm"),
        ({"outputs": "text,docx"}, "outputs.1"),
        ({"force_ocr": "maybe"}, "force_ocr"),
        ({"languages": "../../etc"}, "languages"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_invalid_options_are_422_with_the_field(
    client: TestClient[Any, Any], tmp_path: Path, fields: dict[str, str], field: str
) -> None:
    png = write_png(tmp_path / "p.png", ["x"])
    error = await error_of(await client.post("/v1/jobs", data=form(png, **fields)), 422)
    assert error["code"] == "invalid_options"
    assert [detail["field"] for detail in error["details"]] == [field]


async def test_language_not_installed_is_422(client: TestClient[Any, Any], tmp_path: Path) -> None:
    png = write_png(tmp_path / "p.png", ["x"])
    response = await client.post("/v1/jobs", data=form(png, languages="eng+klingon"))
    error = await error_of(response, 422)
    assert error["code"] == "unsupported_language"
    assert "klingon" in error["message"]
    assert "apt-get install tesseract-ocr-klingon" in error["message"]


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ready" and body["free_bytes"] > 0


async def test_filename_is_only_a_display_name(
    client: TestClient[Any, Any], tmp_path: Path, settings: Settings
) -> None:
    png = write_png(tmp_path / "p.png", ["x"])
    data = aiohttp.FormData()
    data.add_field("file", png.read_bytes(), filename="../../etc/passwd.png")
    job = await (await client.post("/v1/jobs", data=data)).json()
    assert job["source"]["filename"] == "passwd.png"
    stored = list(settings.storage_dir.rglob("*"))
    assert all(path.resolve().is_relative_to(settings.storage_dir.resolve()) for path in stored)


def test_clean_filename_strips_paths_and_control_characters() -> None:
    assert clean_filename("..\\..\\boot.ini") == "boot.ini"
    assert clean_filename("a\x00b\x07c\r\n.pdf") == "abc.pdf"
    assert clean_filename("../") == "upload"
    assert len(clean_filename("x" * 1000)) == 200
    # Line and paragraph separators, NEL, bidirectional overrides and zero-width marks too.
    assert clean_filename("in\u2028voice\u0085\u202egpj.exe\u200b") == "invoicegpj.exe"
    assert clean_filename("\u202e") == "upload"


async def test_jobs_are_listed_newest_first_with_paging_and_a_state_filter(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pngs = [write_png(tmp_path / f"p{n}.png", [f"page {n}"]) for n in range(5)]
    ids = [(await (await client.post("/v1/jobs", data=form(png))).json())["id"] for png in pngs]
    first = await (await client.get("/v1/jobs?limit=3")).json()
    assert [job["id"] for job in first["jobs"]] == ids[::-1][:3]
    second = await (await client.get(f"/v1/jobs?limit=3&cursor={first['next_cursor']}")).json()
    assert [job["id"] for job in second["jobs"]] == ids[::-1][3:]
    assert second["next_cursor"] is None
    queued = await (await client.get("/v1/jobs?state=queued&limit=100")).json()
    assert {job["id"] for job in queued["jobs"]} >= set(ids)
    assert (await (await client.get("/v1/jobs?state=succeeded")).json())["jobs"] == []
    error = await error_of(await client.get("/v1/jobs?state=bogus"), 422)
    assert error["code"] == "invalid_options"


async def test_a_filtered_listing_looks_at_a_bounded_number_of_jobs_a_request(
    client: TestClient[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "SCAN_BUDGET", 2)
    pngs = [write_png(tmp_path / f"p{n}.png", [f"page {n}"]) for n in range(5)]
    ids = [(await (await client.post("/v1/jobs", data=form(png))).json())["id"] for png in pngs]
    assert (await client.post(f"/v1/jobs/{ids[0]}/cancel")).status == 200  # the oldest
    pages, cursor = [], ""
    while cursor is not None:
        page = await (await client.get(f"/v1/jobs?state=cancelled&cursor={cursor}")).json()
        pages.append([job["id"] for job in page["jobs"]])
        cursor = page["next_cursor"]
    assert pages == [[], [], [ids[0]]]  # two jobs looked at a request, the newest first


def test_storage_keys_never_leave_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    assert storage.local_path("jobs/j_1/../j_1/source") is None  # inside, merely absent
    for key in ("../x", "jobs/../../x", "/etc/passwd"):
        with pytest.raises(ValueError, match="escapes"):
            storage.local_path(key)


async def test_a_cursor_the_listing_never_gave_is_a_400(client: TestClient[Any, Any]) -> None:
    for cursor in ("garbage", "j_", "j_01m8zbq5p7bvm9an3vk3v7'"):
        response = await client.get("/v1/jobs", params={"cursor": cursor})
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_request"
    assert (await client.get("/v1/jobs", params={"cursor": "j_01m8zbq5p7bvm9an3vk3v7"})).ok


async def test_metadata_is_capped_on_every_way_in(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """The JSON path once took 900 KB of metadata a job (the form path capped it at 64 KiB):
    a hundred such jobs grew Redis by 264 MiB."""
    large = {"notes": "x" * 20_000}
    by_url = await client.post(
        "/v1/jobs", json={"url": "https://example.com/a.pdf", "metadata": large}
    )
    png = write_png(tmp_path / "p.png", ["metadata"])
    by_form = await client.post("/v1/jobs", data=form(png, metadata=json.dumps(large)))
    for response in (by_url, by_form):
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "payload_too_large"
    small = {"notes": "x" * 10_000}
    fine = await client.post(
        "/v1/jobs", json={"url": "https://example.com/a.pdf", "metadata": small}
    )
    assert fine.status == 202


async def test_pages_run_only_their_own_code_and_nothing_is_sniffed(
    client: TestClient[Any, Any],
) -> None:
    for path in ("/", "/dashboard"):
        page = await client.get(path)
        policy = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "unsafe-inline" not in policy and "'sha256-" in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/ocrflow.js", "/healthz", "/openapi.json", "/v1/jobs/j_missing"):
        assert (await client.get(path)).headers["X-Content-Type-Options"] == "nosniff", path


async def test_query_values_are_held_to_what_the_schema_says(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    assert (await client.get("/v1/admin/jobs?before=")).status == 200  # empty: no cursor
    job = await (await submit(client, write_png(tmp_path / "p.png", ["pictured"]))).json()
    for width in ("99999", "10", "wide"):
        reply = await client.get(f"/v1/jobs/{job['id']}/pages/1/image?width={width}")
        assert reply.status == 422, width
        assert (await reply.json())["error"]["code"] == "invalid_options"
    assert (await client.get("/v1/admin/jobs?limit=100000")).status == 422
