"""Crawler manners: a bounded number of requests per host with a minimum spacing between them,
and robots.txt (RFC 9309) respected for every URL fetched."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from protego import Protego

from ingest.fetch import FetchError, Fetcher, FetchRefused, HttpStatus
from ingest.guard import DEFAULT_PORTS, redact_url
from marsad import metrics

log = logging.getLogger(__name__)

ROBOTS_TOKEN = "marsad"
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 asks crawlers to parse at least 500 KiB
ROBOTS_TTL = 3600.0  # RFC 9309: cached rules should not be used for more than 24 hours
ROBOTS_ERROR_TTL = 60.0
MAX_CRAWL_DELAY = 60.0  # a site's Crawl-delay is honoured up to this many seconds
_MAX_IDLE_HOSTS = 1000
# Rules of this many hosts at most, even when all were read within the hour (a burst of
# articles linking to new sites); the ones read longest ago go first and are read again if needed.
_MAX_CACHED_RULES = 10_000


def origin(url: str) -> str:
    """scheme://host:port, without credentials: the unit robots.txt and host limits apply to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{parts.port or DEFAULT_PORTS.get(scheme, 0)}"


@dataclass
class _Host:
    slots: asyncio.Semaphore
    spacing: asyncio.Lock = field(default_factory=asyncio.Lock)
    delay: float = 0.0
    next_start: float = 0.0
    users: int = 0


class HostGate:
    """At most ``concurrency`` requests in flight per host, starting at least ``delay`` seconds
    apart (longer when the site's robots.txt asks for a Crawl-delay)."""

    def __init__(self, concurrency: int, delay: float):
        self.concurrency = concurrency
        self.delay = delay
        self._hosts: dict[str, _Host] = {}

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            if len(self._hosts) >= _MAX_IDLE_HOSTS:
                self._forget_idle()
            host = self._hosts[key] = _Host(asyncio.Semaphore(self.concurrency), delay=self.delay)
        return host

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, h in self._hosts.items() if h.users == 0 and h.next_start <= now]:
            del self._hosts[key]

    def set_delay(self, url: str, seconds: float) -> None:
        host = self._host(origin(url))
        host.delay = max(self.delay, min(seconds, MAX_CRAWL_DELAY))

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = self._host(origin(url))
        host.users += 1
        try:
            async with host.slots:
                async with host.spacing:
                    wait = host.next_start - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    host.next_start = time.monotonic() + host.delay
                yield
        finally:
            host.users -= 1


@dataclass
class _Rules:
    parser: Protego | None  # None: everything allowed
    error: FetchError | None
    expires: float


class Robots:
    """robots.txt per origin, cached. A 4xx answer allows everything; an unreachable robots.txt
    (timeout, network error, 5xx) disallows everything until it can be read, as RFC 9309 asks,
    and the fetch fails with the same error so the feed's state says why."""

    def __init__(self, fetcher: Fetcher, gate: HostGate):
        self.fetcher = fetcher
        self.gate = gate
        self._rules: dict[str, _Rules] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str, feed: str) -> bool:
        """Whether ``url`` may be fetched; raises the robots.txt fetch error when unreachable.
        ``feed`` labels the robots.txt fetch in metrics when one is needed."""
        key = origin(url)
        rules = self._rules.get(key)
        if rules is None or rules.expires < time.monotonic():
            if key not in self._locks and len(self._locks) >= _MAX_IDLE_HOSTS:
                self._forget_expired()
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                rules = self._rules.get(key)
                if rules is None or rules.expires < time.monotonic():
                    rules = self._rules[key] = await self._load(url, feed)
        if isinstance(rules.error, FetchRefused):
            raise FetchRefused(str(rules.error))  # the URL's own address is refused, not robots
        if rules.error is not None:
            error = FetchError(f"robots.txt unreachable: {rules.error}")
            error.result = rules.error.result
            raise error
        return rules.parser is None or rules.parser.can_fetch(url, ROBOTS_TOKEN)

    def _forget_expired(self) -> None:
        """Articles link to ever more hosts over months; rules past their time are fetched
        again anyway, so they and their idle locks need not stay, and beyond
        ``_MAX_CACHED_RULES`` hosts neither do the oldest."""
        now = time.monotonic()
        for key in [k for k, r in self._rules.items() if r.expires < now]:
            del self._rules[key]
        if len(self._rules) >= _MAX_CACHED_RULES:
            oldest = sorted(self._rules, key=lambda k: self._rules[k].expires)
            for key in oldest[: len(oldest) - _MAX_CACHED_RULES * 3 // 4]:
                del self._rules[key]
        for key in [k for k, lock in self._locks.items()
                    if k not in self._rules and not lock.locked()]:
            del self._locks[key]

    async def _load(self, url: str, feed: str) -> _Rules:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        robots_url = f"{parts.scheme}://{netloc}/robots.txt"
        result = ""  # stays empty when cancelled: nothing to count
        started = 0.0
        try:
            async with self.gate.slot(robots_url):
                started = time.monotonic()
                # RFC 9309: a longer file is parsed as far as the limit, not refused.
                response = await self.fetcher.get(robots_url, max_bytes=ROBOTS_MAX_BYTES,
                                                  truncate=True)
                result = "ok"
        except HttpStatus as exc:
            if 400 <= exc.status < 500:
                result = "not_found"
                return _Rules(None, None, time.monotonic() + ROBOTS_TTL)
            result = exc.result
            log.info("robots.txt of %s: %s", redact_url(robots_url), exc)
            return _Rules(None, exc, time.monotonic() + ROBOTS_ERROR_TTL)
        except FetchError as exc:
            result = exc.result
            log.info("robots.txt of %s: %s", redact_url(robots_url), exc)
            return _Rules(None, exc, time.monotonic() + ROBOTS_ERROR_TTL)
        finally:
            if result:
                metrics.FEED_FETCHES.labels(feed, "robots", result).inc()
            if result and started:
                metrics.FEED_FETCH_LATENCY.labels(feed, "robots").observe(time.monotonic() - started)
        text = response.body.decode("utf-8", errors="replace")
        if len(response.body) >= ROBOTS_MAX_BYTES:
            text = text.rpartition("\n")[0]  # the cut line is not a rule
        # Protego matches as RFC 9309 says: the longest rule wins, with * and $ wildcards
        # (urllib.robotparser takes the first rule that matches and knows no wildcards).
        parser = Protego.parse(text)
        delay = parser.crawl_delay(ROBOTS_TOKEN)
        if delay:
            self.gate.set_delay(url, float(delay))
        return _Rules(parser, None, time.monotonic() + ROBOTS_TTL)
