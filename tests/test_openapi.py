"""The served API description, checked by schemathesis against the running service; and
property tests of the parsing every submission goes through."""

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.http.errors import STATUS
from ocrflow.http.submission import parse_options
from ocrflow.jobs.sources import MAX_FILENAME, clean_filename
from ocrflow.pipeline.options import OcrOptions
from ocrflow.settings import Settings
from tests.support import multipart, write_png

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


async def test_the_description_covers_every_route(client: TestClient[Any, Any]) -> None:
    document = await (await client.get("/openapi.json")).json()
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert served == described


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    aiohttp_server: Any, settings: Settings
) -> None:
    key, entry = new_api_key("fuzz")
    fuzzed = settings.model_copy(
        update={
            "api_keys": (entry,),
            "rate_limit": 0,
            "s3_events_secret": "hook-secret",
            "high_priority_callers": ("key:fuzz",),
        }
    )
    server: TestServer = await aiohttp_server(create_app(fuzzed))
    base = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        str(server.make_url("/openapi.json")),
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--seed",
        "20261122",
        # Nothing carried from one run to the next: the same seed, the same requests.
        "--generation-database",
        "none",
        # Endless by design: the feed of all jobs' events never ends on its own.
        "--exclude-path",
        "/v1/events",
        "--exclude-path",
        "/v1/admin/events",
    ]
    # Boundary values of every field, then random requests, valid and invalid.
    command = [*base, "--phases", "coverage,fuzzing", "--max-examples", "60"]
    # It blocks; the server it tests runs on this loop, so the run goes to a thread.
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", done.stdout), done.stdout[-3000:]


FIELD_NAMES = st.sampled_from(
    ["languages", "outputs", "dpi", "psm", "force_ocr", "rotate", "deskew", "bogus", ""]
)
FIELDS = st.dictionaries(FIELD_NAMES, st.lists(st.text(max_size=20), min_size=1, max_size=3))


@given(FIELDS)
def test_option_parsing_gives_options_or_a_422_with_field_errors(
    fields: dict[str, list[str]],
) -> None:
    try:
        options = parse_options(fields, Settings(_env_file=None).default_options)
    except OcrflowError as exc:
        assert exc.code is ErrorCode.INVALID_OPTIONS and STATUS[exc.code] == 422
        assert exc.details
        named = {detail["field"].split(".")[0] for detail in exc.details}
        assert named <= set(fields) | set(OcrOptions.model_fields)
    else:
        assert 72 <= options.dpi <= 600 and options.languages and options.outputs


@given(st.text(max_size=400))
def test_a_filename_is_never_a_path(name: str) -> None:
    clean = clean_filename(name)
    assert clean and len(clean) <= MAX_FILENAME
    assert "/" not in clean and "\\" not in clean
    assert all(ord(c) >= 32 and c != "\x7f" for c in clean)


# Header text: anything but the characters that end a header line or the quoted value.
HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_characters='"\r\n'), max_size=60)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.one_of(FIELD_NAMES, HEADER_TEXT),
        st.one_of(st.text(max_size=40).map(str.encode), st.binary(max_size=40)),
        max_size=4,
    ),
    filename=HEADER_TEXT,
    content=st.sampled_from(["png", "empty", "noise", "text"]),
)
async def test_any_multipart_submission_is_accepted_or_refused_with_a_code(
    client: TestClient[Any, Any],
    tmp_path: Path,
    fields: dict[str, bytes],
    filename: str,
    content: str,
) -> None:
    document = {
        "png": write_png(tmp_path / "p.png", ["x"]).read_bytes(),
        "empty": b"",
        "noise": bytes(range(256)) * 4,
        "text": b"%PDF-1.7 but not really",
    }[content]
    body, content_type = multipart(fields, filename, document)
    response = await client.post("/v1/jobs", data=body, headers={"Content-Type": content_type})
    answer = await response.text()
    assert response.status in (202, 400, 413, 415, 422), answer
    if response.status != 202:
        assert json.loads(answer)["error"]["code"]
    else:
        shown = json.loads(answer)["source"]["filename"]
        assert "/" not in shown and all(ord(c) >= 32 for c in shown)
