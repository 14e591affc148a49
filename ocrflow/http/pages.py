"""The two web pages (`/`, the upload page; `/dashboard`, the operators') and the script they
share, served under a Content-Security-Policy that lets them run only their own scripts and
styles, and never inside another site's frame."""

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from aiohttp import web

from ocrflow.http.auth import public

STATIC = Path(__file__).parent / "static"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)

routes = web.RouteTableDef()


@routes.get("/")
@public
async def index(request: web.Request) -> web.FileResponse:
    return _page("index.html")


@routes.get("/dashboard")
@public
async def dashboard(request: web.Request) -> web.FileResponse:
    """The page holds no data: what it shows comes from the operator API, with the caller's
    key, so a caller who is not an operator sees a 403 there."""
    return _page("dashboard.html")


@routes.get("/ocrflow.js")
@public
async def page_script(request: web.Request) -> web.FileResponse:
    """What the two pages share (the key, API calls, downloads)."""
    return web.FileResponse(
        STATIC / "ocrflow.js",
        headers={"Cache-Control": "no-cache", "Content-Type": "text/javascript"},
    )


def _page(name: str) -> web.FileResponse:
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": policy(name),
        "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
        "Referrer-Policy": "no-referrer",
    }
    return web.FileResponse(STATIC / name, headers=headers)


@cache
def policy(name: str) -> str:
    """The page's own inline script and style, by their hashes, and files from this origin."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall((STATIC / name).read_text()):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        hashes[kind].append(f"'sha256-{digest}'")
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {' '.join(hashes['script'])}",
            f"style-src 'self' {' '.join(hashes['style'])}",
            "img-src 'self' blob: data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
