"""What the README shows runs as written, and the deploy files say what they should."""

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestServer
from arq.worker import Worker

from ocrflow.http.app import create_app
from ocrflow.settings import Settings
from ocrflow.worker.callbacks import signature_header
from tests.support import write_image_pdf

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


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
    exec(compile(block, "README.md", "exec"), namespace)
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
