"""Which addresses marsad may fetch from, and how URLs appear in logs.

Feed items carry links chosen by whoever publishes the feed, so every URL is untrusted: a link or
a redirect to ``http://169.254.169.254/`` or ``http://localhost:6379/`` must not make marsad a
proxy into its own network. The check runs on the address a host name resolves to (see
``ingest.fetch.GuardedResolver``, which hands only checked addresses to the connection), so a
name that resolves to a public address once and a private one later gains nothing.

Only the standard library here: the config validates ``[ingest] allow_hosts`` with it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}

# Never reachable through allow_private, only by listing them in allow_hosts: cloud metadata
# services live on link-local addresses, and "0.0.0.0" or multicast are never a web server.
_ALWAYS_BLOCKED = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10",          # link-local, incl. 169.254.169.254 (AWS, GCP, Azure)
    "100.100.100.200/32",                   # Alibaba Cloud metadata
    "fd00:ec2::254/128",                    # AWS metadata over IPv6
    "0.0.0.0/8", "::/128",                  # "this host": connecting to it reaches loopback
    "224.0.0.0/4", "ff00::/8",              # multicast
    "240.0.0.0/4",                          # reserved, incl. broadcast
))
# IPv6 forms that carry an IPv4 address in their last 32 bits and can route to it: NAT64,
# IPv4-translated and the deprecated IPv4-compatible form (6to4 is unwrapped by the stdlib).
_EMBEDS_IPV4 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
# Private in all but name: local-use NAT64 (RFC 8215) and the deprecated site-local range.
_PRIVATE_V6 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "fec0::/10"))

_SENSITIVE_PARAM = re.compile(
    r"token|key|pass|pwd|secret|sig|auth|credential|session|code", re.IGNORECASE)
# Any scheme: a feed list may hold ftp://user:password@... too.
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]*[^\s'\"<>.,:;)]", re.IGNORECASE)
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-_]*[a-z0-9])?)*$")


class Refused(OSError):
    """A URL or address marsad will not fetch. An OSError so that aiohttp's connector passes it
    through from the resolver as the cause of its connection error."""


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside IPv6 forms that route to it (IPv4-mapped, -translated and
    -compatible, NAT64, 6to4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        # :: and ::1 are themselves, not IPv4 0.0.0.0 and 0.0.0.1.
        if int(ip) > 1 and any(ip in net for net in _EMBEDS_IPV4):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


@dataclass(frozen=True)
class AllowRule:
    """One ``[ingest] allow_hosts`` entry: a host name or an IP (each with an optional port),
    or a CIDR network."""

    host: str | None = None
    port: int | None = None
    network: IPNetwork | None = None

    def matches(self, host: str, port: int, ip: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip in self.network
        if self.host is None:
            return False
        try:
            # An IP entry names the address, whatever host name led to it.
            return _unwrap(ipaddress.ip_address(self.host)) == ip
        except ValueError:
            return self.host == host


def parse_allow_hosts(entries: list[str]) -> tuple[AllowRule, ...]:
    """``"example.org"``, ``"example.org:8080"``, ``"10.0.0.5"``, ``"[::1]:8080"``,
    ``"10.0.0.0/8"``; raises ValueError naming the bad entry."""
    rules = []
    for raw in entries:
        entry = raw.strip().lower()
        try:
            if "/" in entry:
                rules.append(AllowRule(network=ipaddress.ip_network(entry, strict=False)))
                continue
            host, port = entry, None
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                if rest:
                    port = int(rest.removeprefix(":"))
            elif entry.count(":") == 1:
                host, _, port_text = entry.partition(":")
                port = int(port_text)
            if port is not None and not 1 <= port <= 65535:
                raise ValueError
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                if not _HOSTNAME.match(host.rstrip(".")):
                    raise
                host = host.rstrip(".")
            rules.append(AllowRule(host=host, port=port))
        except ValueError:
            raise ValueError(
                f"{raw!r} is not a host, host:port, IP, [IPv6]:port or CIDR network") from None
    return tuple(rules)


class AddressPolicy:
    """Public addresses are allowed; loopback, private and other special ones only when
    ``allow_private`` is set or an allow rule names them. Link-local (cloud metadata),
    unspecified, multicast and reserved addresses need an explicit allow rule."""

    def __init__(self, allow_private: bool = False, allow_hosts: tuple[AllowRule, ...] = ()):
        self.allow_private = allow_private
        self.rules = allow_hosts

    def address_allowed(self, host: str, port: int, address: str | IPAddress) -> bool:
        ip = _unwrap(ipaddress.ip_address(address) if isinstance(address, str) else address)
        host = host.lower().rstrip(".")
        if any(rule.matches(host, port, ip) for rule in self.rules):
            return True
        if any(ip in net for net in _ALWAYS_BLOCKED if net.version == ip.version):
            return False
        if ip.version == 6 and any(ip in net for net in _PRIVATE_V6):
            return self.allow_private
        if ip.is_reserved and not ip.is_loopback:
            return False
        return ip.is_global or self.allow_private

    def check_url(self, url: str) -> None:
        """Refuses non-http(s) URLs and disallowed literal IPs; host names are checked after
        resolution, by the resolver."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise Refused(f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise Refused(f"only http and https URLs are fetched, not {scheme or 'relative'!r}")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise Refused("URL has no host")
        port = port or DEFAULT_PORTS[scheme]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return
        if not self.address_allowed(host, port, ip):
            raise Refused(f"address {ip} is not public; allow it in [ingest] allow_hosts")


def _mask_params(query: str) -> str:
    # Parameters are separated by & or, on some servers, by ; (which the path may carry too).
    pieces = re.split(r"([&;])", query)
    for i in range(0, len(pieces), 2):
        name, eq, _value = pieces[i].partition("=")
        if eq and _SENSITIVE_PARAM.search(unquote(name)):
            pieces[i] = f"{name}=***"
    return "".join(pieces)


def redact_url(url: str) -> str:
    """``url`` without user:password@ and with secret-looking query values masked, for logs
    and for anything shown to a user."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rpartition("@")[2]
    path = _mask_params(parts.path) if ";" in parts.path else parts.path
    out = f"{parts.scheme}://{netloc}{path}" if parts.scheme else f"{netloc}{path}"
    if parts.query:
        out += "?" + _mask_params(parts.query)
    if parts.fragment:
        out += "#" + _mask_params(parts.fragment)
    return out


def redact_text(text: str) -> str:
    """Every URL inside a message (an exception's text, say) redacted."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
