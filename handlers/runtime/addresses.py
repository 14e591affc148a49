"""Which network addresses ocrflow may reach on a caller's behalf (URL ingestion, callbacks):
public ones only, unless an operator allows private networks. Checked on every hop."""

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ocrflow.handlers.errors import ErrorCode, OcrflowError

SCHEMES = frozenset({"http", "https"})


class AddressNotAllowed(OcrflowError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.URL_NOT_ALLOWED, message)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: URL, *, allow_private: bool) -> None:
    """Refuse other schemes, and hosts that are private addresses written as such."""
    if url.scheme not in SCHEMES or not url.host:
        raise AddressNotAllowed(f"only http and https URLs are allowed, not {str(url)[:100]!r}")
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(url.host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not is_public(str(literal)):
        raise AddressNotAllowed(f"{url.host} is not a public address")


class PublicResolver(AbstractResolver):
    """Resolves names, then refuses any answer that is not a public address (SSRF, DNS
    rebinding): the connection goes to an address that was checked."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        refused = [a["host"] for a in answers if not is_public(a["host"])]
        if refused:
            raise AddressNotAllowed(f"{host} resolves to {refused[0]}, not a public address")
        return answers

    async def close(self) -> None:
        await self._resolver.close()


def connector_options(*, allow_private: bool) -> dict[str, Any]:
    """Keyword arguments for aiohttp's TCPConnector."""
    return {} if allow_private else {"resolver": PublicResolver()}
