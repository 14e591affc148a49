"""A real document through the real ingress, Redis, arq worker, process pool and Tesseract."""

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker

from tests.support import submit, wait_for_job, words, write_image_pdf, write_png

PAGES = [
    ["The quick brown fox jumps", "over the lazy dog"],
    ["Invoice number 4711", "Total due: 250 euros"],
]


async def test_two_page_pdf_is_read_page_by_page(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    response = await submit(client, write_image_pdf(tmp_path / "scan.pdf", PAGES))
    accepted = await response.json()
    assert accepted["state"] == "queued"
    assert response.headers["Location"].endswith(f"/v1/jobs/{accepted['id']}")
    assert accepted["source"]["media_type"] == "application/pdf"

    job = await wait_for_job(client, accepted["id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["attempt"] == 1
    assert job["progress"] == {
        "stage": "done",
        "pages_done": 2,
        "pages_total": 2,
        "fraction": 1.0,
        "message": "done",
    }

    result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert [page["number"] for page in result["pages"]] == [1, 2]
    for page, lines in zip(result["pages"], PAGES, strict=True):
        assert words(page["text"]) == words(" ".join(lines))
        assert page["method"] == "ocr"
        assert page["confidence"] > 80
        first = page["lines"][0]["words"][0]
        assert first["text"] == lines[0].split()[0]
        left, top, right, bottom = first["bbox"]
        assert 0 <= left < right <= page["width"] and 0 <= top < bottom <= page["height"]

    text = await client.get(f"/v1/jobs/{job['id']}/outputs/text")
    assert text.status == 200
    assert text.headers["Content-Type"].startswith("text/plain")
    pages = (await text.text()).split("\f")
    assert [words(page) for page in pages] == [words(" ".join(lines)) for lines in PAGES]


async def test_png_with_options_and_csv_output(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "page.png", ["Scanned receipt 2026"])
    accepted = await (await submit(client, png, outputs="text,csv", psm="6")).json()
    assert accepted["options"]["outputs"] == ["text", "csv"]
    assert accepted["options"]["psm"] == 6
    job = await wait_for_job(client, accepted["id"])
    assert job["state"] == "succeeded", job["error"]
    assert set(job["outputs"]) == {"text", "csv", "json"}
    csv_text = await (await client.get(f"/v1/jobs/{job['id']}/outputs/csv")).text()
    header, row = csv_text.strip().splitlines()
    assert header == "number,method,confidence,words,seconds,error"
    assert row.startswith("1,ocr,") and row.split(",")[3] == "3"


async def test_corrupt_pdf_fails_with_stable_code(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref\n")
    accepted = await (await submit(client, corrupt)).json()
    job = await wait_for_job(client, accepted["id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "invalid_pdf"
    assert job["error"]["retryable"] is False
    assert job["attempt"] == 1
    result = await client.get(f"/v1/jobs/{job['id']}/result")
    assert result.status == 409
    assert (await result.json())["error"]["code"] == "job_failed"
