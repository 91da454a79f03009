"""HTTP GET for feeds, articles and robots.txt, with every limit a crawler of untrusted sites needs.

- Only http(s); every hop of a redirect chain is checked against the address policy, and host
  names are checked after DNS resolution by ``GuardedResolver``, whose checked addresses are the
  ones aiohttp connects to (so DNS rebinding cannot slip a private address in).
- Connect and read timeouts, plus one deadline for the whole request including redirects and
  body, so a server that drips a byte every few seconds cannot hold a slot forever.
- The body is read in chunks with a byte cap that applies after decompression: marsad decodes
  gzip itself with a bounded output size, so a small gzip bomb is stopped at the cap.
- A clear User-Agent, no cookies kept, no proxies taken from the environment.

Failures raise a ``FetchError`` whose ``result`` is the metric label for it.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from ingest.guard import AddressPolicy, Refused, parse_allow_hosts, redact_text, redact_url
from marsad import __version__
from marsad.config import IngestConfig, parse_duration

PROJECT_URL = "https://github.com/marsad-project/marsad"
USER_AGENT = f"marsad/{__version__} (+{PROJECT_URL})"
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
# Retry-After beyond a day is more likely a mistake than a plan; a day is long enough to be polite.
MAX_RETRY_AFTER = 86400.0


class FetchError(Exception):
    """A fetch that produced no usable response; ``result`` labels it in metrics."""

    result = "network_error"


class FetchRefused(FetchError):
    result = "refused"


class FetchTimeout(FetchError):
    result = "timeout"


class TooLarge(FetchError):
    result = "too_large"


class TooManyRedirects(FetchError):
    result = "too_many_redirects"


class HttpStatus(FetchError):
    """An answer other than 2xx or 304. ``retry_after`` in seconds, when the server said."""

    result = "http_error"

    def __init__(self, status: int, reason: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.retry_after = retry_after


class BadEncoding(FetchError):
    result = "http_error"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date, in seconds from now, capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    user_agent: str = USER_AGENT

    @classmethod
    def from_config(cls, ingest: IngestConfig) -> Limits:
        return cls(
            connect_timeout=parse_duration(ingest.connect_timeout, "ingest.connect_timeout"),
            read_timeout=parse_duration(ingest.read_timeout, "ingest.read_timeout"),
            total_timeout=parse_duration(ingest.fetch_timeout, "ingest.fetch_timeout"),
            max_bytes=ingest.max_response_bytes,
            max_redirects=ingest.max_redirects,
            user_agent=ingest.user_agent or USER_AGENT,
        )


def policy_from_config(ingest: IngestConfig) -> AddressPolicy:
    return AddressPolicy(ingest.allow_private, parse_allow_hosts(ingest.allow_hosts))


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner`` and keeps only the addresses the policy allows; aiohttp connects
    to exactly the addresses returned here."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None):
        self.policy = policy
        self.inner = inner or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        resolved = await self.inner.resolve(host, port, family)
        allowed = [r for r in resolved if self.policy.address_allowed(host, port, r["host"])]
        if not allowed:
            addresses = ", ".join(sorted({r["host"] for r in resolved})) or "nothing"
            raise Refused(f"{host} resolves to {addresses}, which is not public; "
                          "allow it in [ingest] allow_hosts")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class Response:
    url: str  # after redirects
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


class _Decoder:
    """Content-Encoding undone with a bound on the output, so compression cannot beat the cap."""

    def __init__(self, encoding: str):
        if encoding in ("gzip", "x-gzip", "deflate"):
            # 47 = auto-detect a gzip or zlib header, the two forms servers send for these.
            self._zlib: Any = zlib.decompressobj(47)
        elif encoding in ("", "identity"):
            self._zlib = None
        else:
            raise BadEncoding(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes, room: int) -> bytes:
        """At most ``room`` bytes of decoded output; more means the body is over the cap."""
        if self._zlib is None:
            return chunk[:room]
        try:
            return self._zlib.decompress(chunk, room)
        except zlib.error as exc:
            raise BadEncoding(f"corrupt compressed body ({exc})") from None


class Fetcher:
    """One aiohttp session for all fetches of a poller; use as ``async with``."""

    def __init__(self, limits: Limits, policy: AddressPolicy,
                 resolver: AbstractResolver | None = None):
        self.limits = limits
        self.policy = policy
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy, self._resolver),
            # Per-host limits are ingest.polite.HostGate's job, outside the request deadline,
            # so that waiting for a turn is not mistaken for a slow server.
            limit=100, limit_per_host=0, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.limits.connect_timeout,
                                          sock_read=self.limits.read_timeout),
            headers={"User-Agent": self.limits.user_agent, "Accept-Encoding": "gzip"},
            auto_decompress=False, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, url: str, headers: Mapping[str, str] | None = None,
                  max_bytes: int | None = None, truncate: bool = False,
                  on_redirect: Callable[[str], Awaitable[None]] | None = None) -> Response:
        """The 2xx or 304 answer for ``url`` after redirects; anything else raises FetchError.

        ``truncate``: a body over ``max_bytes`` is cut there instead of refused. ``on_redirect``
        is awaited with each redirect's target before it is requested, and may raise a
        FetchError to stop there (robots.txt of the site redirected to).
        """
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                return await self._get(url, dict(headers or {}),
                                       max_bytes or self.limits.max_bytes, truncate, on_redirect)
        except aiohttp.ServerTimeoutError as exc:  # connect or read timeout; also a TimeoutError
            raise FetchTimeout(redact_text(str(exc)) or "timed out") from None
        except TimeoutError:
            raise FetchTimeout(f"no complete answer within {self.limits.total_timeout:g}s") from None
        except Refused as exc:
            raise FetchRefused(str(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, Refused):
                raise FetchRefused(str(exc.os_error)) from None
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise FetchError(f"cannot connect to {exc.host}:{exc.port}: {reason}") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise FetchError(redact_text(f"{type(exc).__name__}: {exc}")) from None

    async def _get(self, url: str, headers: dict[str, str], max_bytes: int, truncate: bool,
                   on_redirect: Callable[[str], Awaitable[None]] | None) -> Response:
        assert self._session is not None, "Fetcher used outside 'async with'"
        current = URL(url)
        for hop in range(self.limits.max_redirects + 1):
            self.policy.check_url(str(current))
            if hop and on_redirect is not None:
                await on_redirect(str(current))
            async with self._session.get(current, headers=headers, allow_redirects=False) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    current = resp.url.join(URL(location))
                    continue
                if resp.status == 304:
                    return Response(str(resp.url), 304, resp.headers.copy(), b"")
                if not 200 <= resp.status < 300:
                    retry = (retry_after_seconds(resp.headers.get("Retry-After"))
                             if resp.status in (429, 503) else None)
                    raise HttpStatus(resp.status, resp.reason or "", retry)
                body = await self._read(resp, max_bytes, truncate)
                return Response(str(resp.url), resp.status, resp.headers.copy(), body)
        raise TooManyRedirects(f"more than {self.limits.max_redirects} redirects from "
                               f"{redact_url(url)}")

    @staticmethod
    async def _read(resp: aiohttp.ClientResponse, max_bytes: int, truncate: bool) -> bytes:
        if not truncate and resp.content_length is not None and resp.content_length > max_bytes:
            raise TooLarge(f"Content-Length {resp.content_length} is over the "
                           f"{max_bytes}-byte cap")
        decoder = _Decoder(resp.headers.get("Content-Encoding", "").strip().lower())
        body = bytearray()
        received = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            received += len(chunk)
            room = max_bytes + 1 - len(body)
            body += decoder.feed(chunk, room)
            if received > max_bytes or len(body) > max_bytes:
                if truncate:
                    return bytes(body[:max_bytes])
                raise TooLarge(f"body is over the {max_bytes}-byte cap"
                               + (" after decompression" if received <= max_bytes else ""))
        return bytes(body)
