"""An async client for ocrflow's HTTP API, for scripts: `ocrflow submit` is built on it.

async with OcrflowClient("http://127.0.0.1:8080") as client:
    job = await client.submit_file(Path("scan.pdf"), outputs="text,json")
    job = await client.wait(job["id"])
    await client.download(job, "text", Path("scan.txt"))
"""

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
BUSY = frozenset({429, 503})


class ApiFailure(Exception):
    """The service refused a request: a stable `code`, the HTTP `status`, a message, and for
    invalid fields the `details` (field, message) the service gave."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or []

    def explain(self) -> str:
        """The message, with each field's complaint."""
        fields = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in self.details)
        return f"{self.message} ({fields})" if fields else self.message


class OcrflowClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, busy_retries: int = 8) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._busy_retries = busy_retries
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "OcrflowClient":
        connector = aiohttp.TCPConnector(limit=64)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=self._headers
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use the client as `async with`"
        return self._session

    async def submit_file(
        self, path: Path, *, handlers: Mapping[str, Any] | str | None = None, **fields: str
    ) -> dict[str, Any]:
        """Upload a file as a job; `fields` are the job's options as form fields, `handlers` the
        handlers to run after recognition (name -> parameters, in order; or that as JSON)."""
        if handlers is not None:
            fields["handlers"] = handlers if isinstance(handlers, str) else json.dumps(handlers)

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            for name, value in fields.items():
                data.add_field(name, value)
            data.add_field("file", path.open("rb"), filename=path.name)
            return data

        return await self._post_until_accepted("/v1/jobs", form)

    async def submit_url(
        self, url: str, *, handlers: Mapping[str, Any] | str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A job for a document at `url`; `fields` and `handlers` as for `submit_file`."""
        if handlers is not None:
            fields["handlers"] = handlers if isinstance(handlers, str) else dict(handlers)
        return await self._post_until_accepted("/v1/jobs", lambda: {"url": url, **fields})

    async def _post_until_accepted(self, path: str, body: Any) -> dict[str, Any]:
        return await self._request("POST", path, body)

    async def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Send, waiting out 429/503 answers as their Retry-After says (with backoff). At the
        limit of active jobs it waits for as long as it takes: its own jobs free the room."""
        delay, tries = 1.0, 0
        while True:
            payload = body() if body else None
            kwargs = {"json": payload} if isinstance(payload, dict) else {"data": payload}
            async with self.session.request(method, self.base_url + path, **kwargs) as response:
                if response.status not in BUSY:
                    return await _json_or_raise(response)
                wait = float(response.headers.get("Retry-After", delay))
                code = await _error_code(response)
            tries += code != "too_many_active_jobs"
            if tries > self._busy_retries:
                raise ApiFailure(response.status, code, "the service stayed busy")
            await asyncio.sleep(min(wait, 60.0))
            delay = min(delay * 2, 30.0)

    async def check(self) -> None:
        """Whether the service answers and takes this client's key: raises `ApiFailure`
        (401 `unauthorized`, say) or aiohttp's connection errors if not."""
        await self._request("GET", "/v1/jobs?limit=1")

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v1/jobs/{job_id}")

    async def wait(self, job_id: str, *, poll_interval: float = 2.0) -> dict[str, Any]:
        """The job once it has ended: followed over its event stream, polled if that fails."""
        try:
            async with self.session.get(f"{self.base_url}/v1/jobs/{job_id}/events") as response:
                if response.status == 200:
                    async for line in response.content:
                        if line.startswith(b"event: ") and line[7:].strip() in (
                            b"done",
                            b"failed",
                            b"cancelled",
                        ):
                            break
        except (aiohttp.ClientError, TimeoutError):
            pass
        while (job := await self.job(job_id))["state"] not in TERMINAL:
            await asyncio.sleep(poll_interval)
        return job

    async def output_json(self, job: dict[str, Any], name: str) -> Any:
        """A JSON output of the job (`fields.json`, `report.json`), read."""
        async with self.session.get(job["outputs"][name]) as response:
            if response.status != 200:
                await _json_or_raise(response)
            return await response.json(content_type=None)

    async def download(self, job: dict[str, Any], name: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        for tries in range(self._busy_retries + 1):
            async with self.session.get(job["outputs"][name]) as response:
                if response.status in BUSY and tries < self._busy_retries:
                    await asyncio.sleep(min(float(response.headers.get("Retry-After", 1)), 60.0))
                    continue
                if response.status != 200:
                    await _json_or_raise(response)
                with partial.open("wb") as handle:
                    async for chunk in response.content.iter_chunked(256 * 1024):
                        handle.write(chunk)
                break
        partial.replace(dest)


async def _error_code(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
        return str(body["error"]["code"])
    except (json.JSONDecodeError, aiohttp.ContentTypeError, KeyError, TypeError):
        return "service_unavailable"


async def _json_or_raise(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except (json.JSONDecodeError, aiohttp.ContentTypeError) as exc:
        raise ApiFailure(response.status, "bad_response", "the answer is not JSON") from exc
    if response.status >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code, message = error.get("code", "http_error"), error.get("message", "")
        raise ApiFailure(response.status, code, message, error.get("details"))
    return dict(body)
