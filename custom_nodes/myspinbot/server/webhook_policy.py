"""Which addresses a webhook may reach: never the server's own network unless the operator says so.

A webhook URL comes from whoever submits a job, so without a policy it is a way to make the
server send requests to places only the server can reach (the cloud metadata service at
169.254.169.254, a database on the LAN, ComfyUI's own ``/interrupt`` on 127.0.0.1).
``AddressPolicy`` refuses every address that is loopback, link-local, private (RFC 1918, ULA
fc00::/7), shared (100.64/10), multicast, reserved or unspecified, including the same addresses
written as IPv4-mapped / NAT64 / 6to4 IPv6 or in the legacy numeric forms ``inet_aton`` accepts
(``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``). It is applied twice:

- when the job is submitted (``check_url``): literal addresses, user info in the URL and names
  that are internal by convention (``localhost``, ``*.internal``, single-label names, ...);
- when a delivery connects: ``GuardedResolver`` is the HTTP client's resolver, so what a name
  resolves to *then* is checked (a name that later points inside is still caught); literal
  addresses, which aiohttp never resolves, are checked by ``check_url`` before each attempt.

The allow-list (setting ``webhook_allow``, env ``MYSPINBOT_WEBHOOK_ALLOW``, comma-separated)
opts targets back in. Each entry is a host name (``hooks.lan``: every address it resolves to),
an address or CIDR range (``10.0.0.0/8``, ``fd00::/8``), optionally with a port
(``127.0.0.1:9000``, ``[::1]:9000``, ``hooks.lan:8443``) so that only that port is opened.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from typing import Any, Iterable, Union

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

log = logging.getLogger("myspinbot.webhooks")

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# Why a target was refused (``AddressRefused.reason``).
USERINFO, INTERNAL_NAME, INTERNAL_ADDRESS, MALFORMED_HOST = "userinfo", "internal_name", "internal_address", "malformed_host"

# Names that only ever mean "this machine" or "this network".
_INTERNAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost"})
_INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".intranet", ".lan", ".home.arpa",
                      ".in-addr.arpa", ".ip6.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


class AddressRefused(OSError):
    """A webhook target the policy refuses; ``reason`` is one of USERINFO, INTERNAL_NAME,
    INTERNAL_ADDRESS, MALFORMED_HOST. An ``OSError`` so aiohttp's connector passes it on
    (wrapped in a ``ClientConnectorError``) when the resolver raises it."""

    def __init__(self, host: str, reason: str):
        super().__init__(f"webhook target {host!r} refused ({reason})")
        self.host = host
        self.reason = reason


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``inet_aton`` reads from ``host`` (1 to 4 dot-separated parts, each
    decimal, octal with a leading 0 or hex with 0x; the last part fills the remaining bytes),
    or None when ``host`` is not such a form."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        if re.fullmatch(r"0[xX][0-9a-fA-F]*", part):
            numbers.append(int(part[2:] or "0", 16))
        elif re.fullmatch(r"0[0-7]*", part):
            numbers.append(int(part, 8))
        elif re.fullmatch(r"[1-9][0-9]*", part):
            numbers.append(int(part))
        else:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64 64:ff9b::/96, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_internal(ip: IPAddress) -> bool:
    """Whether ``ip`` (or the IPv4 address inside it) is not a public unicast address."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        if is_internal(inner):
            return True
        if ip.ipv4_mapped is not None or ip in _NAT64:
            return False  # judged by the IPv4 address it stands for
    return (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def literal_address(host: str) -> IPAddress | None:
    """``host`` read as an IP address (IPv6, dotted IPv4 or a legacy numeric IPv4 form), or None
    for a name. Raises ``AddressRefused(MALFORMED_HOST)`` for a numeric host that is no address."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise AddressRefused(host, MALFORMED_HOST)
    ip = legacy_ipv4(host)
    if ip is None and _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        raise AddressRefused(host, MALFORMED_HOST)  # no real top-level domain is numeric
    return ip


def normalize_host(host: str) -> str:
    """Lower case, without the trailing dot of a fully qualified name."""
    return host.lower().rstrip(".")


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a host name or a network, and the port it is limited to (None: any)."""
    name: str | None
    network: IPNetwork | None
    port: int | None

    def matches_name(self, host: str, port: int | None) -> bool:
        return self.name is not None and self.name == host and self.port in (None, port)

    def matches_address(self, ip: IPAddress, port: int | None) -> bool:
        if self.network is None or self.port not in (None, port):
            return False
        candidates = [ip] + ([ip.ipv4_mapped] if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else [])
        return any(c.version == self.network.version and c in self.network for c in candidates)


def parse_allow_entry(text: str) -> AllowEntry:
    """``host``, ``address``, ``cidr``, each optionally ``:port`` (IPv6 in brackets when a port
    follows). Raises ValueError when the entry is neither."""
    text = text.strip()
    port: int | None = None
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", text)
    if bracketed:
        text, port = bracketed.group(1), int(bracketed.group(2)) if bracketed.group(2) else None
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"bad port in {text!r}")
        port = int(port_text)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    try:
        return AllowEntry(None, ipaddress.ip_network(text, strict=False), port)
    except ValueError:
        pass
    name = normalize_host(text)
    if not name or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"{text!r} is neither a host name nor an address or CIDR range")
    return AllowEntry(name, None, port)


class AddressPolicy:
    """The refusal rules plus the allow-list; see the module docstring."""

    def __init__(self, allow: Iterable[str] = ()):
        self.allow: list[AllowEntry] = []
        for text in allow:
            try:
                self.allow.append(parse_allow_entry(text))
            except ValueError as err:  # a typo must not stop ComfyUI; it just opens nothing
                log.warning("myspinbot: ignoring MYSPINBOT_WEBHOOK_ALLOW entry %r: %s", text, err)

    @classmethod
    def from_settings(cls, settings: Any) -> "AddressPolicy":
        return cls(getattr(settings, "webhook_allow", ()) or ())

    def name_allowed(self, host: str, port: int | None) -> bool:
        """Whether ``host`` is an allow-listed name (then whatever it resolves to is accepted)."""
        host = normalize_host(host)
        return any(e.matches_name(host, port) for e in self.allow)

    def address_allowed(self, ip: IPAddress, port: int | None) -> bool:
        """Whether a connection to ``ip`` is accepted: a public address, or an allow-listed one."""
        return not is_internal(ip) or any(e.matches_address(ip, port) for e in self.allow)

    def check_url(self, url: URL | str) -> None:
        """Raise ``AddressRefused`` when ``url`` carries user info, or its host is an internal
        address or an internal-by-convention name that is not allow-listed. Names are not
        resolved here; the resolver checks what they resolve to when a delivery connects."""
        parsed = url if isinstance(url, URL) else URL(url)
        host = parsed.raw_host or ""
        if "@" in (parsed.raw_authority or ""):
            raise AddressRefused(host, USERINFO)  # credentials would be shown on the job and logged
        port = parsed.port
        name = normalize_host(host)
        if self.name_allowed(name, port):
            return
        ip = literal_address(name.split("%", 1)[0])
        if ip is not None:
            if not self.address_allowed(ip, port):
                raise AddressRefused(host, INTERNAL_ADDRESS)
            return
        labels = name.split(".")
        if not all(_LABEL.fullmatch(label) for label in labels):
            raise AddressRefused(host, MALFORMED_HOST)
        if len(labels) < 2 or name in _INTERNAL_NAMES or name.endswith(_INTERNAL_SUFFIXES):
            raise AddressRefused(host, INTERNAL_NAME)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops the addresses ``policy`` refuses from every answer and
    raises ``AddressRefused`` when none is left; it wraps ``inner`` (aiohttp's default resolver)."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None):
        self.policy = policy
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        if self.policy.name_allowed(host, port):
            return answers
        kept = [a for a in answers if self._allowed(a["host"], port)]
        if not kept:
            raise AddressRefused(host, INTERNAL_ADDRESS)
        return kept

    def _allowed(self, address: str, port: int) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return self.policy.address_allowed(ip, port)

    async def close(self) -> None:
        await self.inner.close()
