"""What the README and docs/ show runs as written, the handlers' reference is made from their
models, and the deploy files say what they should."""

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestServer
from arq.worker import Worker

from ocrflow.handlers import reference
from ocrflow.http.app import create_app
from ocrflow.settings import Settings
from ocrflow.worker.callbacks import signature_header
from tests.support import write_image_pdf

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks() -> list[str]:
    text = "".join(page.read_text() for page in PAGES)
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_handlers_reference_is_what_their_models_say(tmp_path: Path) -> None:
    page = ROOT / "docs" / "handlers.md"
    copy = tmp_path / "handlers.md"
    copy.write_text(page.read_text())
    assert not reference.rewrite(copy, reference.built_in()), (
        "docs/handlers.md is stale: run .venv/bin/python -m ocrflow.handlers.reference "
        "docs/handlers.md"
    )
    for name in ("min_similarity", "position", "lines", "region", "check", "values", "formats"):
        assert f"| `{name}` |" in page.read_text()


def test_the_readme_is_the_front_door_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), (
                f"{page.name} links to {target}, which is not there"
            )


async def test_the_client_example_runs_as_written(
    aiohttp_server: Any, settings: Settings, worker: Worker, tmp_path: Path
) -> None:
    (example,) = [block for block in python_blocks() if "OcrflowClient(" in block]
    server: TestServer = await aiohttp_server(create_app(settings), host="127.0.0.1")
    script = tmp_path / "example.py"
    script.write_text(example.replace("http://127.0.0.1:8080", str(server.make_url("/"))))
    write_image_pdf(tmp_path / "scan.pdf", [["Read by the README example"]])
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert (tmp_path / "scan.txt").read_text().split() == ["Read", "by", "the", "README", "example"]


def test_the_signature_check_verifies_what_ocrflow_signs() -> None:
    (block,) = [block for block in python_blocks() if "def verify(" in block]
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/usage.md", "exec"), namespace)
    body = b'{"id": "j_1", "state": "succeeded"}'
    header = signature_header("s3cret", body)
    assert namespace["verify"]("s3cret", header, body)
    assert not namespace["verify"]("s3cret", header, body.replace(b"succeeded", b"failed"))
    assert not namespace["verify"]("other", header, body)


def test_compose_starts_the_service_only_once_redis_answers() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}
