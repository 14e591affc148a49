"""Handlers: plug-ins that run after recognition, on a real worker, each in its own process."""

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError
from yarl import URL

from ocrflow.client import ApiFailure, OcrflowClient
from ocrflow.handlers.fields import FieldsParams, FieldSpec, find, find_pairs, normalize
from ocrflow.handlers.validate import Rule, check, number
from ocrflow.http.app import create_app
from ocrflow.pipeline.result import Line, PageResult, Word
from ocrflow.pipeline.sheets import csv_text, safe_cell
from ocrflow.settings import Settings
from tests.support import (
    FormEntry,
    Style,
    form,
    form_page,
    read_events,
    running_worker,
    wait_for_job,
    write_png,
)

MIB = 1024 * 1024
GOOD = [
    FormEntry("Applicant", "Maria Lopez"),
    FormEntry("Date of birth", "1984-03-17"),
    FormEntry("Account number", "ACC-20417"),
    FormEntry("Amount requested", "12,500.00", below=True),
    FormEntry("Country", "Portugal"),
    FormEntry("Reference", "REF 88213", below=True),
]
SPEC = {
    "fields": [
        {"name": "applicant", "label": "Applicant", "pages": "1"},
        {"name": "born", "label": "Date of birth", "pattern": r"\d{4}-\d\d-\d\d"},
        {"name": "account", "label": "Account number", "pattern": r"ACC-\d+"},
        {"name": "amount", "label": "Amount requested", "position": "below"},
        {"name": "country", "label": "Country", "pages": "2-"},
        {"name": "reference", "pattern": r"REF\s*(\d{5})", "region": [0.0, 0.0, 0.6, 1.0]},
    ]
}
RULES = {
    "rules": [
        {"check": "required", "field": "applicant"},
        {"check": "date", "field": "born", "after": "1900-01-01", "before": "2010-01-01"},
        {"check": "pattern", "field": "account", "pattern": r"^ACC-\d{5}$"},
        {"check": "range", "field": "amount", "min": 1000, "max": 50000},
        {"check": "one_of", "field": "country", "values": ["Portugal", "Spain", "France"]},
        {"check": "pattern", "pattern": "application form", "name": "is an application"},
    ]
}


def packet(path: Path, pages: list[tuple[list[FormEntry], Style]]) -> Path:
    images = [form_page(entries, style, seed=n).image for n, (entries, style) in enumerate(pages)]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=300)
    return path


def app_settings(settings: Settings, *allowed: str) -> Settings:
    return settings.model_copy(
        update={
            "handlers": ("fields", "validate", *allowed),
            "handler_memory_limit": 768 * MIB,
        }
    )


async def test_fields_and_validate_read_a_packet_and_fail_a_bad_one(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    settings = app_settings(settings)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    # Page 1 upright and clean; page 2 scanned sideways; page 3 noisy, the values on it again.
    font = Style(font="DejaVuSans.ttf", font_size=40)
    pages = [
        (GOOD[:3], font),
        (GOOD[3:5], Style(font="DejaVuSerif.ttf", font_size=40, rotation=90)),
        (GOOD[5:], Style(font="DejaVuSans.ttf", font_size=40, noise=True)),
    ]
    good = packet(tmp_path / "good.pdf", pages)
    bad_entries = [
        FormEntry("Applicant", "Maria Lopez"),
        FormEntry("Date of birth", "17 Smarch 1984"),
        FormEntry("Account number", "ACC-20417"),
        FormEntry("Amount requested", "99,000.00", below=True),
        FormEntry("Country", "Atlantis"),
    ]
    bad = packet(tmp_path / "bad.pdf", [(bad_entries[:4], font), (bad_entries[4:], font)])
    handlers = json.dumps({"fields": SPEC, "validate": RULES})
    async with running_worker(settings):
        ids = []
        for document in (good, bad):
            response = await client.post("/v1/jobs", data=form(document, handlers=handlers))
            assert response.status == 202, await response.text()
            ids.append((await response.json())["id"])
        good_job, bad_job = [await wait_for_job(client, job_id, timeout=120) for job_id in ids]

    assert good_job["state"] == "succeeded", good_job
    runs = good_job["handlers"]
    assert list(runs) == ["fields", "validate"]
    assert runs["fields"]["state"] == "succeeded", runs["fields"]
    assert runs["fields"]["summary"] == {"found": 6, "missing": []}
    assert runs["validate"]["summary"] == {"passed": True, "rules": 6, "failed": [], "reasons": {}}
    assert good_job["verdict"] == {"passed": True, "failed": []}
    for name in ("fields.json", "fields.csv", "report.json", "report.csv", "report.html"):
        assert name in good_job["outputs"], name
    found = (await (await client.get(URL(good_job["outputs"]["fields.json"]).path)).json())[
        "fields"
    ]
    expected = {
        "applicant": ("Maria Lopez", 1, "Applicant"),
        "born": ("1984-03-17", 1, "Date of birth"),
        "account": ("ACC-20417", 1, "Account number"),
        "amount": ("12,500.00", 2, "Amount requested"),
        "country": ("Portugal", 2, "Country"),
        "reference": ("88213", 3, "Reference"),
    }
    # Where each value was drawn, on the page as it reads upright.
    truth = [
        form_page(entries, replace(style, rotation=0), seed=n).values
        for n, (entries, style) in enumerate(pages)
    ]
    for name, (value, page, label) in expected.items():
        assert found[name]["value"] == value, (name, found[name])
        assert found[name]["page"] == page, (name, found[name])
        assert 0 < found[name]["confidence"] <= 100
        # The box lies on what was drawn for the value (a pattern's group: part of it).
        left, top, right, bottom = found[name]["box"]
        drawn = truth[page - 1][label]
        near = 30
        assert drawn[0] - near <= left < right <= drawn[2] + near, (name, found[name], drawn)
        assert drawn[1] - near <= top < bottom <= drawn[3] + near, (name, found[name], drawn)
        assert right - left >= (drawn[2] - drawn[0]) / 2, (name, found[name], drawn)
    rows = (
        await (await client.get(URL(good_job["outputs"]["fields.csv"]).path)).text()
    ).splitlines()
    assert rows[0] == "field,value,confidence,page,left,top,right,bottom"
    assert rows[1].startswith("applicant,Maria Lopez,")

    assert bad_job["state"] == "succeeded", bad_job
    verdict = bad_job["handlers"]["validate"]["summary"]
    assert verdict["passed"] is False
    assert verdict["failed"] == ["born:date", "amount:range", "country:one_of"], verdict
    report = await (await client.get(URL(bad_job["outputs"]["report.json"]).path)).json()
    reasons = {row["rule"]: row["reason"] for row in report["rules"] if not row["passed"]}
    assert reasons["amount:range"] == "99000 is more than 50000"
    assert "is not one of Portugal, Spain, France" in reasons["country:one_of"]
    # The job's verdict says the same in one place, each failed rule in words.
    said = {item["rule"]: item["reason"] for item in bad_job["verdict"]["failed"]}
    assert bad_job["verdict"]["passed"] is False and list(said) == verdict["failed"]
    assert said["amount:range"] == "amount: 99000 is more than 50000"
    page = await client.get(URL(bad_job["outputs"]["report.html"]).path)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "attachment" in page.headers["Content-Disposition"]
    assert "amount:range" in await page.text()


async def test_a_plugin_package_runs_through_its_entry_point_with_live_events(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    settings = app_settings(settings, "wordcount")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    document = write_png(tmp_path / "words.png", ["alpha beta alpha", "gamma alpha beta"])
    async with running_worker(settings):
        response = await client.post(
            "/v1/jobs",
            data=form(document, handlers='{"wordcount": {"top": 2}}'),
        )
        assert response.status == 202, await response.text()
        job_id = (await response.json())["id"]
        events = []
        async with asyncio.timeout(60):
            stream = await client.get(f"/v1/jobs/{job_id}/events")
            async for event in read_events(stream):
                events.append(event)
                if event.kind in ("done", "failed", "cancelled"):
                    break
        job = await wait_for_job(client, job_id)

    assert job["state"] == "succeeded", job
    run = job["handlers"]["wordcount"]
    assert run["state"] == "succeeded" and run["params"] == {"top": 2}
    assert run["summary"] == {"words": 6, "top": ["alpha", "beta"]}
    assert run["outputs"] == ["wordcount.csv"] and run["seconds"] > 0
    csv_text = await (await client.get(URL(job["outputs"]["wordcount.csv"]).path)).text()
    assert csv_text.splitlines() == ["page,words", "1,6"]
    handler_events = [event.data for event in events if event.kind == "handler"]
    assert [e["state"] for e in handler_events] == ["running", "running", "running", "succeeded"]
    assert handler_events[1]["message"] == "counting the words of 1 pages"
    assert handler_events[2]["fraction"] == 1.0
    assert handler_events[-1]["summary"] == run["summary"]
    kinds = [event.kind for event in events]
    assert kinds.index("handler") > max(i for i, kind in enumerate(kinds) if kind == "page")
    ending = events[-1].data["job"]
    assert kinds[-1] == "done" and ending["handlers"]["wordcount"]["state"] == "succeeded"


async def test_a_handler_that_fails_in_any_way_leaves_the_ocr_outputs_and_a_recorded_error(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    settings = app_settings(settings, "raises", "sleeps", "hoards", "wordcount")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    document = write_png(tmp_path / "memo.png", ["A short memo to read"])
    asked = {"raises": {}, "sleeps": {"seconds": 30}, "hoards": {}, "wordcount": {}}
    async with running_worker(settings):
        response = await client.post(
            "/v1/jobs", data=form(document, outputs="text,pdf", handlers=json.dumps(asked))
        )
        assert response.status == 202, await response.text()
        job = await wait_for_job(client, (await response.json())["id"], timeout=90)

    assert job["state"] == "succeeded" and job["error"] is None, job
    runs = job["handlers"]
    assert runs["raises"]["state"] == "failed"
    assert runs["raises"]["error"]["code"] == "handler_failed"
    assert (
        runs["raises"]["error"]["message"]
        == "ValueError: memo.png is not what this handler expected"
    )
    assert runs["sleeps"]["error"]["code"] == "handler_timeout"
    assert (
        runs["sleeps"]["error"]["message"] == "the handler took longer than 2 s (its own timeout)"
    )
    assert runs["sleeps"]["seconds"] < 10  # its own 2 s timeout, not the 30 s it asked for
    assert runs["hoards"]["error"]["code"] == "handler_out_of_memory", runs["hoards"]
    # The handler after them ran; a failed handler's outputs are not kept.
    assert runs["wordcount"]["state"] == "succeeded"
    assert sorted(job["outputs"]) == ["json", "pdf", "text", "wordcount.csv"]
    assert "memo" in (await (await client.get(URL(job["outputs"]["text"]).path)).text()).lower()


async def test_a_handler_times_out_before_the_job_would(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    """Handlers get what is left of the job's own time, less a margin to end the job: one that
    runs on fails alone, and the job still succeeds."""
    settings = app_settings(settings, "lingers", "wordcount").model_copy(update={"job_timeout": 16})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    document = write_png(tmp_path / "note.png", ["A note"])
    async with running_worker(settings):
        asked = json.dumps({"lingers": {"seconds": 60}, "wordcount": {}})
        response = await client.post("/v1/jobs", data=form(document, handlers=asked))
        job = await wait_for_job(client, (await response.json())["id"], timeout=60)
    assert job["state"] == "succeeded", job
    lingered = job["handlers"]["lingers"]
    assert lingered["error"]["code"] == "handler_timeout"
    assert "(what was left of the job's OCRFLOW_JOB_TIMEOUT)" in lingered["error"]["message"]
    assert job["handlers"]["wordcount"]["error"]["message"].startswith("no time was left")


async def test_an_unknown_handler_or_bad_parameters_is_a_422_and_nothing_is_stored(
    client: TestClient[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    document = write_png(tmp_path / "page.png", ["Some text"])
    cases = [
        ("nosuch", "unknown_handler", "handlers.nosuch"),
        ('{"wordcount": {}}', "unknown_handler", "handlers.wordcount"),  # installed, not allowed
        (
            '{"fields": {"fields": [{"name": "x"}]}}',
            "invalid_handler_params",
            "handlers.fields.fields.0",
        ),
        (
            '{"fields": {"fields": [{"name": "x", "pattern": "("}]}}',
            "invalid_handler_params",
            "handlers.fields.fields.0.pattern",
        ),
        (
            '{"validate": {"rules": [{"check": "range", "field": "a"}]}}',
            "invalid_handler_params",
            "handlers.validate.rules.0",
        ),
        ('{"fields": []}', "invalid_handler_params", "handlers.fields"),
        ("[1, 2]", "invalid_options", None),
    ]
    for value, code, field in cases:
        response = await client.post("/v1/jobs", data=form(document, handlers=value))
        assert response.status == 422, (value, await response.text())
        error = (await response.json())["error"]
        assert error["code"] == code, (value, error)
        if field is not None:
            assert error["details"][0]["field"] == field, (value, error)
    # A JSON body is checked the same way.
    response = await client.post(
        "/v1/jobs", json={"url": "https://example.com/a.pdf", "handlers": {"nosuch": {}}}
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "unknown_handler"
    listing = await (await client.get("/v1/jobs")).json()
    assert listing["jobs"] == []
    assert not (settings.data_dir / "jobs").exists() or not any(
        (settings.data_dir / "jobs").iterdir()
    )


def test_labels_are_found_through_ocr_noise_and_values_beside_or_below_them() -> None:
    def line(top: int, *words: tuple[str, int]) -> Line:
        boxes = [
            Word(text, 90.0, (left, top, left + 20 * len(text), top + 40)) for text, left in words
        ]
        return Line((boxes[0].bbox[0], top, boxes[-1].bbox[2], top + 40), tuple(boxes))

    page = PageResult(
        number=1,
        method="ocr",
        width=2550,
        height=3300,
        dpi=300,
        text="",
        lines=(
            line(
                100,
                ("Invoce", 100),
                ("Numbr:", 240),
                ("INV-7731", 400),
                ("Total:", 1500),
                ("41.00", 1640),
            ),
            line(300, ("Ship", 100), ("to", 200)),
            line(360, ("Rua", 100), ("Augusta", 180), ("12", 340), ("Other", 1500)),
            line(420, ("1100-053", 100), ("Lisboa", 300)),
        ),
    )
    invoice = find([page], FieldSpec(name="n", label="Invoice Number"), 0.8)
    assert invoice is not None and invoice.value == "INV-7731" and invoice.box[0] == 400
    assert invoice.label_similarity is not None and invoice.label_similarity < 1
    # The value beside stops where the next column starts.
    assert "Total" not in invoice.value
    ship = find([page], FieldSpec(name="s", label="Ship to:", position="below"), 0.8)
    assert ship is not None and ship.value == "Rua Augusta 12"
    # An address: the value takes the lines under the label, as many as asked.
    spec = FieldSpec(name="s", label="Ship to", position="below", lines=3)
    address = find([page], spec, 0.8)
    assert address is not None and address.value == "Rua Augusta 12 1100-053 Lisboa"
    assert address.box == (100, 360, 420, 460)
    total = find([page], FieldSpec(name="t", pattern=r"Total:\s*([\d.]+)"), 0.8)
    assert total is not None and total.value == "41.00" and total.box[0] == 1640
    assert find([page], FieldSpec(name="x", label="Signature"), 0.8) is None
    assert find([page], FieldSpec(name="t", label="Total", region=(0, 0, 0.5, 1)), 0.8) is None
    assert normalize("Naïve  Café:") == "naivecafe"
    # Tesseract split the label's line where its baseline wavered: the value is on a line of
    # its own, at the label's height.
    split = replace(
        page,
        lines=(
            line(500, ("Date", 100), ("of", 200), ("birtl", 260)),
            line(502, (":", 380), ("2005-05-04", 420)),
        ),
    )
    born = find([split], FieldSpec(name="b", label="Date of birth"), 0.8)
    assert born is not None and born.value == "2005-05-04" and born.box[0] == 420


def test_validate_reads_numbers_and_dates_as_forms_write_them() -> None:
    assert number("$ 1,234.50") == 1234.5
    assert number("1.234,50 EUR") == 1234.5
    assert number("12,500") == 12500
    assert number("n/a") is None
    assert check(Rule(check="date", field="d"), "March 17, 1984") == (True, "")
    assert check(Rule(check="date", field="d"), "17.03.1984") == (True, "")
    assert check(Rule(check="date", field="d", before="1980-01-01"), "1984-03-17")[0] is False
    assert check(Rule(check="required", field="d"), None) == (False, "missing")
    assert check(Rule(check="one_of", field="d", values=["Yes"]), " yes ") == (True, "")


async def test_the_python_client_asks_for_handlers(
    aiohttp_server: Any, settings: Settings, tmp_path: Path
) -> None:
    server = await aiohttp_server(create_app(app_settings(settings)), host="127.0.0.1")
    base = str(server.make_url("/")).rstrip("/")
    document = write_png(tmp_path / "receipt.png", ["Receipt number: 4471"])
    spec = {"fields": [{"name": "receipt", "label": "Receipt number"}]}
    async with running_worker(settings), OcrflowClient(base) as client:
        job = await client.submit_file(document, handlers={"fields": spec}, outputs="text")
        done = await client.wait(job["id"], poll_interval=0.1)
        assert done["handlers"]["fields"]["summary"] == {"found": 1, "missing": []}
        await client.download(done, "fields.json", tmp_path / "fields.json")
        found = json.loads((tmp_path / "fields.json").read_text())["fields"]
        assert found["receipt"]["value"] == "4471"
        with pytest.raises(ApiFailure) as refused:
            await client.submit_url("https://example.com/a.pdf", handlers={"nosuch": {}})
    assert refused.value.status == 422 and refused.value.code == "unknown_handler"


def test_the_misbehaving_handlers_are_not_in_the_environment_a_user_runs() -> None:
    listing = "from importlib.metadata import entry_points as e; "
    listing += "print(' '.join(sorted(p.name for p in e(group='ocrflow.handlers'))))"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    found = subprocess.run(
        [sys.executable, "-c", listing],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"fields", "validate"} <= set(found)
    assert not {"raises", "sleeps", "hoards", "lingers"} & set(found)


def test_csv_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    hostile = ["=cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "+1+1", "-2+3", "\t=1", "\r=1"]
    rows = list(csv.reader(io.StringIO(csv_text(["=name", "value"], [[v, v] for v in hostile]))))
    assert rows[0] == ["'=name", "value"]
    assert [row[0] for row in rows[1:]] == ["'" + value for value in hostile]
    assert safe_cell("plain 12") == "plain 12" and safe_cell(-3) == -3


def test_callers_patterns_run_in_linear_time_and_backtracking_ones_are_refused() -> None:
    rule = Rule(check="pattern", field="code", pattern="(a+)+$")
    started = time.perf_counter()
    assert check(rule, "a" * 200_000 + "b") == (False, "does not match (a+)+$")
    assert time.perf_counter() - started < 1  # a backtracking engine would never return
    for pattern in (r"(a)\1", "(?=a)a", "(?<!x)a"):
        with pytest.raises(ValidationError, match="no backreferences or lookaround"):
            Rule(check="pattern", field="code", pattern=pattern)
        with pytest.raises(ValidationError, match="no backreferences or lookaround"):
            FieldSpec(name="code", pattern=pattern)
    spec = FieldSpec(name="no", label="Invoice No", pattern=r"(\d+)")
    assert spec.pattern == r"(\d+)"


async def test_a_cancelled_jobs_handlers_say_they_were_cancelled(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    settings = app_settings(settings, "lingers", "wordcount")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    document = write_png(tmp_path / "note.png", ["A note"])
    async with running_worker(settings):
        asked = json.dumps({"lingers": {"seconds": 60}, "wordcount": {}})
        job_id = (
            await (await client.post("/v1/jobs", data=form(document, handlers=asked))).json()
        )["id"]
        async with asyncio.timeout(60):
            while (await (await client.get(f"/v1/jobs/{job_id}")).json())["handlers"]["lingers"][
                "state"
            ] != "running":
                await asyncio.sleep(0.05)
        assert (await client.post(f"/v1/jobs/{job_id}/cancel")).status == 200
        async with asyncio.timeout(10):
            while True:
                job = await (await client.get(f"/v1/jobs/{job_id}")).json()
                if job["handlers"]["lingers"]["state"] != "running":
                    break
                await asyncio.sleep(0.05)
    assert job["state"] == "cancelled"
    assert {name: run["state"] for name, run in job["handlers"].items()} == {
        "lingers": "cancelled",
        "wordcount": "cancelled",
    }


async def test_a_jobs_handlers_share_one_time_budget(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    """Two slow handlers take at most OCRFLOW_HANDLER_TIMEOUT together, not each."""
    settings = app_settings(settings, "lingers", "wordcount").model_copy(
        update={"handler_timeout": 3}
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    document = write_png(tmp_path / "note.png", ["A note"])
    async with running_worker(settings):
        asked = json.dumps({"lingers": {"seconds": 60}, "wordcount": {}})
        response = await client.post("/v1/jobs", data=form(document, handlers=asked))
        job = await wait_for_job(client, (await response.json())["id"], timeout=60)
    lingered, counted = job["handlers"]["lingers"], job["handlers"]["wordcount"]
    assert lingered["error"]["code"] == "handler_timeout" and lingered["seconds"] < 5
    assert counted["error"]["code"] == "handler_timeout"
    assert counted["error"]["message"] == (
        "no time was left of the 3 s the job's handlers share (OCRFLOW_HANDLER_TIMEOUT)"
    )


def line_at(top: int, *words: tuple[str, int]) -> Line:
    """A line of words 34 px high, each 22 px a letter, starting where given."""
    boxes = [Word(text, 90.0, (left, top, left + 22 * len(text), top + 34)) for text, left in words]
    return Line((boxes[0].bbox[0], top, boxes[-1].bbox[2], top + 34), tuple(boxes))


def test_values_in_a_column_of_their_own_are_their_labels_and_never_another_label() -> None:
    """The commonest form: labels in one column, values ~230 px (and up to 2 inches) right of
    the longest label; Tesseract reads each value as a line of its own."""

    rows = [("Invoice No:", "INV-4417"), ("Date:", "2026-11-02"), ("Due date:", None)]
    rows += [("Customer ID:", "C-0098"), ("Total:", "1,250.00")]
    lines = []
    for n, (label, value) in enumerate(rows):
        top = 400 + 70 * n
        lines.append(line_at(top, *[(word, 200 + 160 * i) for i, word in enumerate(label.split())]))
        if value:
            lines.append(line_at(top + 3, (value, 800 if n % 2 else 1100)))
    page = PageResult(
        number=1, method="ocr", width=2550, height=3300, dpi=300, text="", lines=tuple(lines)
    )

    def value(label: str, **spec: Any) -> str | None:
        found = find([page], FieldSpec(name="x", label=label, **spec), 0.8)
        return found.value if found else None

    assert value("Invoice No") == "INV-4417"
    assert value("Date") == "2026-11-02"
    assert value("Customer") == "C-0098"  # past the rest of its printed label, `ID:`
    assert value("Customer ID", position="right") == "C-0098"
    assert value("Total") == "1,250.00"
    assert value("Due date") is None  # empty: not `Customer ID:` below, nor a value further on
    assert value("Invoice No", max_gap=5) is None  # a value further than asked is not its


def test_pairs_lists_every_label_and_value_a_page_holds() -> None:
    lines = (
        line_at(200, ("INVOICE", 200)),
        line_at(
            400,
            ("Invoice", 200),
            ("No:", 370),
            ("INV-4417", 600),
            ("Date:", 1400),
            ("2026-11-02", 1560),
        ),
        line_at(470, ("Customer", 200), ("ID:", 400)),
        line_at(473, ("C-0098", 900)),
        line_at(540, ("Ship", 200), ("to:", 310)),
        line_at(600, ("Rua", 200), ("Augusta", 290), ("12", 470)),
        line_at(700, ("Paid", 200), ("at", 300), ("10:30", 360), ("today", 500)),
    )
    page = PageResult(
        number=1, method="ocr", width=2550, height=3300, dpi=300, text="", lines=lines
    )
    found = {label: item.value for label, item in find_pairs([page])}
    assert found == {
        "Invoice No": "INV-4417",
        "Date": "2026-11-02",
        "Customer ID": "C-0098",
        "Ship to": "Rua Augusta 12",
    }
    assert FieldsParams(pairs=True).fields == []
    with pytest.raises(ValidationError, match="give `fields`, or `pairs: true`"):
        FieldsParams()
