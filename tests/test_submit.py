"""`ocrflow submit` against a running service: a directory of good and bad files, a manifest,
the exit code, outputs mirrored, and a rerun that resubmits nothing finished."""

import csv
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from arq.worker import Worker

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.runtime.redis_server import free_port
from ocrflow.settings import Settings
from tests.support import run_ocrflow, start_worker, stop_worker, write_image_pdf, write_png


async def run_submit(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    return await run_ocrflow("submit", *args, env=env)


def manifest_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_bulk_submission_with_manifest_and_resume(
    aiohttp_server: Any, settings: Settings, worker: Worker, tmp_path: Path
) -> None:
    server: TestServer = await aiohttp_server(create_app(settings), host="127.0.0.1")
    inbox = tmp_path / "inbox"
    (inbox / "2026" / "march").mkdir(parents=True)
    write_png(inbox / "receipt.png", ["Receipt one"])
    write_image_pdf(inbox / "2026" / "march" / "letter.pdf", [["Letter page"]])
    (inbox / "notes.txt").write_text("not a document")
    out = tmp_path / "out"
    base = str(server.make_url("/")).rstrip("/")

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"fields": [{"name": "number", "label": "Receipt"}]}))
    code, stdout, stderr = await run_submit(
        str(inbox),
        *("--server", base, "--out", str(out), "--outputs", "text,json", "-c", "2"),
        *("--handler", f"fields=@{spec}"),
    )
    assert code == 0, stdout  # a directory's notes.txt is no document: skipped, not failed
    assert f"skipped 1 files that are not documents: {inbox / 'notes.txt'}" in stderr
    lines = manifest_lines(out / "manifest.jsonl")
    by_file = {Path(line["file"]).name: line for line in lines}
    assert set(by_file) == {"receipt.png", "letter.pdf"}
    assert by_file["receipt.png"]["state"] == "succeeded"
    assert by_file["letter.pdf"]["state"] == "succeeded"
    assert all(len(line["sha256"]) == 64 for line in lines)
    assert (out / "receipt.txt").read_text().split() == ["Receipt", "one"]
    assert (out / "2026" / "march" / "letter.txt").read_text().split() == ["Letter", "page"]
    assert json.loads((out / "2026" / "march" / "letter.json").read_text())["page_count"] == 1
    # The handler's outputs come down beside the document's own.
    found = json.loads((out / "receipt.fields.json").read_text())["fields"]
    assert found["number"]["value"] == "one"
    assert (out / "receipt.fields.csv").read_text().startswith("field,value,")

    code, stdout, _ = await run_submit(str(inbox), "--server", base, "--out", str(out))
    assert code == 0
    assert manifest_lines(out / "manifest.jsonl")[len(lines) :] == [], "finished files resent"
    assert "skipped 2" in stdout
    # A file named on the command line is sent whatever it is: the service says what it is not.
    code, stdout, _ = await run_submit(
        str(inbox / "notes.txt"), "--server", base, "--out", str(out)
    )
    assert code == 1
    assert f"failed: {inbox / 'notes.txt'}: unsupported_media_type: " in stdout
    (named,) = manifest_lines(out / "manifest.jsonl")[len(lines) :]
    assert named["state"] == "failed" and named["error"] == "unsupported_media_type"
    assert named["job_id"] is None
    # It failed for good: a rerun leaves it alone, unless told to try it again.
    again = ["--server", base, "--out", str(out)]
    code, stdout, _ = await run_submit(str(inbox / "notes.txt"), *again)
    assert "skipped 1" in stdout and len(manifest_lines(out / "manifest.jsonl")) == len(lines) + 1
    code, stdout, _ = await run_submit(str(inbox / "notes.txt"), *again, "--retry-failed")
    assert code == 1 and len(manifest_lines(out / "manifest.jsonl")) == len(lines) + 2


async def test_bulk_submission_waits_out_rate_limits_and_authenticates(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    key, entry = new_api_key("bulk")
    # A request a second, bursts of two: nearly every request meets a 429 first.
    strict = settings.model_copy(update={"api_keys": (entry,), "rate_limit": 2.0, "rate_burst": 2})
    server: TestServer = await aiohttp_server(create_app(strict), host="127.0.0.1")
    arq_worker, task = await start_worker(strict)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(3):
        write_png(inbox / f"{n}.png", [f"Page number {n}"])
    out = tmp_path / "out"
    base = str(server.make_url("/")).rstrip("/")
    try:
        code, stdout, stderr = await run_submit(
            str(inbox), "--server", base, "--api-key", key, "--out", str(out), "--outputs", "text"
        )
    finally:
        await stop_worker(arq_worker, task)
    assert code == 0, stdout + stderr
    assert [line["state"] for line in manifest_lines(out / "manifest.jsonl")] == ["succeeded"] * 3
    assert (out / "2.txt").read_text().split() == ["Page", "number", "2"]


async def test_submit_says_what_is_wrong_up_front_with_an_exit_code_to_match(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    """Each once went wrong quietly or noisily: a path that does not exist was "0 files" and
    exit 0; a server that is down, a 79-line traceback; a keyed server without a key, every
    file "unauthorized" in the manifest; invalid outputs, one failure a file and no detail."""
    key, entry = new_api_key("bulk")
    keyed = settings.model_copy(update={"api_keys": (entry,)})
    server: TestServer = await aiohttp_server(create_app(keyed), host="127.0.0.1")
    base = str(server.make_url("/")).rstrip("/")
    png = write_png(tmp_path / "page.png", ["Sent once"])
    manifest = ["--manifest", str(tmp_path / "m.jsonl")]

    nowhere = tmp_path / "nowhere"
    code, _, err = await run_submit(str(nowhere), "--server", base, *manifest)
    assert code == 2 and err.strip() == f"ocrflow submit: {nowhere}: no such file or directory"
    down = f"http://127.0.0.1:{free_port()}"
    code, _, err = await run_submit(str(png), "--server", down, *manifest)
    assert code == 3 and len(err.splitlines()) == 1
    assert err.startswith(f"ocrflow submit: cannot reach {down}")
    code, _, err = await run_submit(str(png), "--server", base, *manifest)
    assert code == 3 and "needs an API key (--api-key, or OCRFLOW_API_KEY)" in err
    assert not (tmp_path / "m.jsonl").exists()  # nothing was tried

    def submit(*args: str) -> Any:
        return run_submit(
            str(png), "--server", base, *args, *manifest, env={"OCRFLOW_API_KEY": key}
        )

    code, _, err = await submit("--outputs", "text,docx")
    assert code == 2 and "the server refuses these options" in err and "docx" in err
    code, _, err = await submit("-l", "xx_nope")
    assert code == 2 and "xx_nope" in err
    code, _, err = await submit("--handler", "fields={nope")
    assert code == 2 and "--handler: the parameters of fields are not JSON" in err
    code, _, err = await submit("--handler", "nosuch")
    assert code == 2 and "nosuch" in err
    code, out, err = await submit("--dpi", "150", "--force-ocr", "--psm", "6")
    assert code == 0, out + err
    (line,) = manifest_lines(tmp_path / "m.jsonl")
    job = await (await server_get(base, f"/v1/jobs/{line['job_id']}", key)).json()
    assert job["options"] | {"dpi": 150, "force_ocr": True, "psm": 6} == job["options"]


async def server_get(base: str, path: str, key: str) -> Any:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        response = await session.get(base + path)
        await response.read()
        return response


async def test_a_packet_whose_checks_fail_says_which_with_an_exit_code_of_its_own(
    aiohttp_server: Any, settings: Settings, worker: Worker, tmp_path: Path
) -> None:
    server: TestServer = await aiohttp_server(create_app(settings), host="127.0.0.1")
    packet = tmp_path / "packet"
    packet.mkdir()
    write_png(packet / "a.png", ["Receipt one"])
    write_png(packet / "b.png", ["Letter page"])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"check": "pattern", "pattern": "Receipt"}]}))
    base = str(server.make_url("/")).rstrip("/")
    out = tmp_path / "out"
    code, stdout, _ = await run_submit(
        str(packet), "--server", base, "--out", str(out), "--handler", f"validate=@{rules}"
    )
    assert code == 4, stdout  # all read; some failed their checks
    assert "2 files: succeeded 2; checks failed 1, passed 1;" in stdout
    why = "text:pattern: the text: does not match Receipt"
    assert f"failed its checks: {packet / 'b.png'}: {why}" in stdout
    by_file = {Path(line["file"]).name: line for line in manifest_lines(out / "manifest.jsonl")}
    assert by_file["a.png"]["verdict"] == "passed" and by_file["a.png"]["failed_rules"] == []
    assert by_file["b.png"]["verdict"] == "failed"
    assert by_file["b.png"]["failed_rules"] == [why]

    # The packet as one report: a row a document, its verdict, failed rules and fields' values.
    spec = tmp_path / "fields.json"
    spec.write_text(json.dumps({"fields": [{"name": "kind", "label": "Receipt"}]}))
    report = tmp_path / "packet-report.csv"
    code, stdout, _ = await run_submit(
        str(packet),
        "--server",
        base,
        "--report",
        str(report),
        "--retry-failed",
        *("--handler", f"fields=@{spec}", "--handler", f"validate=@{rules}"),
        *("--out", str(tmp_path / "out2")),
    )
    assert code == 4, stdout
    rows = list(csv.reader(report.read_text().splitlines()))
    assert rows[0] == ["file", "state", "verdict", "failed rules", "error", "kind"]
    assert rows[1] == [str(packet / "a.png"), "succeeded", "passed", "", "", "one"]
    assert rows[2] == [str(packet / "b.png"), "succeeded", "failed", why, "", ""]
    page = report.with_suffix(".html").read_text()
    assert "2 documents; 1 failed their checks." in page and '<tr class="failed">' in page
