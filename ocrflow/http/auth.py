"""Who is calling: API keys (kept as hashes) or JWTs; and which routes need to know.

A caller is a stable string every job is recorded under: `key:<name>` for an API key,
`jwt:<sub>` for a token, `anonymous` when the service runs without authentication (loopback).
"""

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jwt
from aiohttp import web

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.state import SERVICES
from ocrflow.settings import Settings

ANONYMOUS = "anonymous"
KEY_PREFIX = "ofk_"
CALLER = web.RequestKey("caller", str)
NOTIFY_EMAIL = web.RequestKey("notify_email", str)
# The event feeds accept the token as `?access_token=`: a browser's EventSource cannot send
# headers. Nowhere else, so keys stay out of access logs for everything but those streams.
QUERY_TOKEN_ROUTES = frozenset({"job_events", "all_events", "operator_events"})

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Route)


def public(route: H) -> H:
    """No caller needed (the page, health checks, the API description)."""
    route.ocrflow_access = "public"  # type: ignore[attr-defined]
    return route


def monitoring(route: H) -> H:
    """For operators: the monitoring token, or a request from a monitoring network."""
    route.ocrflow_access = "monitoring"  # type: ignore[attr-defined]
    return route


def operator(route: H) -> H:
    """For operators: an authenticated caller named in OCRFLOW_ADMIN_CALLERS (anyone, when
    ocrflow authenticates no one)."""
    route.ocrflow_access = "operator"  # type: ignore[attr-defined]
    return route


def is_operator(request: web.Request) -> bool:
    settings = request.app[SERVICES].settings
    return not settings.authenticated or request[CALLER] in settings.admin_callers


def signed(route: H) -> H:
    """Checks its own shared secret (inbound webhooks)."""
    route.ocrflow_access = "signed"  # type: ignore[attr-defined]
    return route


def new_api_key(name: str) -> tuple[str, str]:
    """A fresh key and the settings entry (`name:sha256`) that admits it; only the entry is kept.
    Keys carry 256 random bits, so a plain SHA-256 cannot be reversed by guessing."""
    if not _valid_name(name):
        raise ValueError("a key name is 1-64 letters, digits, '.', '_' or '-'")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, f"{name}:{_digest(key).hex()}"


def exposure_problem(settings: Settings) -> str | None:
    """Why serving `settings.host` would be unsafe (no authentication, not loopback), if so."""
    if settings.authenticated or settings.allow_unauthenticated or is_loopback(settings.host):
        return None
    return (
        f"refusing to listen on {settings.host or 'every address'} without authentication: "
        "set OCRFLOW_API_KEYS (make one with `ocrflow keys new NAME`) or OCRFLOW_JWT_SECRET / "
        "OCRFLOW_JWT_PUBLIC_KEY; or OCRFLOW_ALLOW_UNAUTHENTICATED=true if something in front "
        "of ocrflow authenticates callers"
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or empty (every address): assume reachable from outside


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "._-" for c in name) and name.isascii()


@dataclass(frozen=True)
class Identity:
    caller: str
    email: str | None = None


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._keys: list[tuple[str, bytes]] = []
        for entry in settings.api_keys:
            name, _, digest = entry.partition(":")
            self._keys.append((name, bytes.fromhex(digest)))
        self._jwt_key: Any = None
        self._jwt_algorithm = ""
        if settings.jwt_secret:
            self._jwt_key, self._jwt_algorithm = settings.jwt_secret, "HS256"
        elif settings.jwt_public_key:
            pem = settings.jwt_public_key
            if not pem.lstrip().startswith("-----BEGIN"):
                pem = Path(pem).read_text()
            self._jwt_key, self._jwt_algorithm = pem, "RS256"
        self._settings = settings
        networks = settings.monitoring_networks
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    @property
    def enabled(self) -> bool:
        return self._settings.authenticated

    def identify(self, token: str | None) -> Identity:
        """The caller a token stands for; 401 for a missing or unknown one."""
        if not self.enabled:
            return Identity(ANONYMOUS)
        if not token:
            raise _unauthorized("send an API key as `Authorization: Bearer …` or `X-API-Key`")
        if self._jwt_key is not None and token.count(".") == 2:
            return self._from_jwt(token)
        if (name := self._key_name(token)) is not None:
            return Identity(f"key:{name}")
        raise _unauthorized("unknown API key")

    def _key_name(self, token: str) -> str | None:
        """Compare against every configured hash, whatever matches, so timing says nothing."""
        digest = _digest(token)
        found = None
        for name, expected in self._keys:
            if hmac.compare_digest(digest, expected):
                found = name
        return found

    def _from_jwt(self, token: str) -> Identity:
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=[self._jwt_algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                options={"require": ["sub", "exp"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the token was refused: {exc}") from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.isprintable() or len(subject) > 200:
            raise _unauthorized("the token's subject is not a printable string")
        email = claims.get(settings.jwt_email_claim)
        return Identity(f"jwt:{subject}", email if isinstance(email, str) else None)

    def monitoring_allowed(self, request: web.Request) -> bool:
        token = self._settings.monitoring_token
        given = _token(request, query=False)
        if token and given and hmac.compare_digest(given.encode(), token.encode()):
            return True
        try:
            remote = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False  # a unix socket: no address to trust
        return any(remote in network for network in self._networks)


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def _token(request: web.Request, *, query: bool) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if key := request.headers.get("X-API-Key"):
        return key.strip()
    return request.query.get("access_token") if query else None


def _unauthorized(message: str) -> OcrflowError:
    return OcrflowError(ErrorCode.UNAUTHORIZED, message)


def caller(request: web.Request) -> str:
    return request[CALLER]


def access_of(request: web.Request) -> str:
    route = request.match_info.handler
    return str(getattr(route, "ocrflow_access", "caller"))


@web.middleware
async def auth_middleware(
    request: web.Request,
    handler: Route,  # the route, under the name aiohttp's middleware protocol gives it
) -> web.StreamResponse:
    if request.match_info.http_exception is not None:
        return await handler(request)  # no such route (or method): say so, to anyone
    authenticator = request.app[AUTHENTICATOR]
    access = access_of(request)
    if access == "monitoring" and not authenticator.monitoring_allowed(request):
        raise OcrflowError(
            ErrorCode.FORBIDDEN,
            "monitoring needs OCRFLOW_MONITORING_TOKEN or a request from "
            "OCRFLOW_MONITORING_NETWORKS",
        )
    if access in ("caller", "operator"):
        route_name = request.match_info.route.name
        token = _token(request, query=route_name in QUERY_TOKEN_ROUTES)
        try:
            identity = authenticator.identify(token)
        except OcrflowError:
            await request.app[SERVICES].limits.check_refused_rate(request.remote or "unknown")
            raise
        request[CALLER] = identity.caller
        if identity.email:
            request[NOTIFY_EMAIL] = identity.email
        await request.app[SERVICES].limits.check_rate(identity.caller)
        if access == "operator" and not is_operator(request):
            raise OcrflowError(
                ErrorCode.FORBIDDEN,
                f"{identity.caller} is not an operator (OCRFLOW_ADMIN_CALLERS names them)",
            )
    return await handler(request)
