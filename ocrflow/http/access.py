"""The access log: one line a request, as aiohttp's, but with credentials left out (a key in
`?access_token=`, which browsers' event feeds must use; user names and passwords in URLs).
Headers that carry keys are never logged."""

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from ocrflow.runtime.logs import redact_url


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote,
            request.method,
            redact_url(request.path_qs),
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )
