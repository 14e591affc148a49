"""Which network addresses ocrflow may reach on a caller's behalf (URL ingestion, callbacks):
public ones only, unless an operator allows private networks. Checked on every hop."""

import ipaddress
import re
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from ocrflow.errors import ErrorCode, OcrflowError

SCHEMES = frozenset({"http", "https"})


class AddressNotAllowed(OcrflowError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.URL_NOT_ALLOWED, message)


# IPv6 ranges that carry an IPv4 address in their last 32 bits: IPv4-compatible and -mapped,
# IPv4-translated (SIIT) and NAT64 (well-known and local-use). Such an address reaches
# whatever the IPv4 address it embeds does.
_EMBEDS_IPV4 = tuple(
    ipaddress.IPv6Network(network)
    for network in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# An IPv4 address in a form other than dotted decimal (octal, hex, fewer than four parts),
# which resolvers may still accept.
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


def is_public(address: str) -> bool:
    """Only global unicast: an IPv6 address that embeds an IPv4 one is as public as that."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(str(embedded))
        if ip not in _GLOBAL_UNICAST:
            return False
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:  # 2002::/16
        return ip.sixtofour
    if ip.teredo is not None:  # 2001::/32: the client's address, obfuscated
        return ip.teredo[1]
    if any(ip in network for network in _EMBEDS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_url(url: URL, *, allow_private: bool) -> None:
    """Refuse other schemes, IPv4 addresses not written in dotted decimal, and hosts that are
    private addresses written as such."""
    if url.scheme not in SCHEMES or not url.host:
        raise AddressNotAllowed(f"only http and https URLs are allowed, not {str(url)[:100]!r}")
    host = url.host.strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.fullmatch(host):
            raise AddressNotAllowed(
                f"{host[:60]} is not an address in dotted decimal nor a name"
            ) from None
        return  # a name: the resolver checks what it resolves to
    if not allow_private and not is_public(str(literal)):
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
