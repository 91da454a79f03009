"""The feed poller: one asyncio task per feed, each polling on its own interval.

A poll is a conditional GET of the feed (ETag / Last-Modified; 304 means nothing new), items
parsed and checked against the seen-items store, and for each new item its article fetched and
extracted (falling back to the feed's own text), turned into a Document and handed to ``send``.
An item is remembered as seen only after ``send`` returned, so a crash re-sends rather than
loses it; the stream's deduplication absorbs the repeat.

Failures back off exponentially (with jitter, capped at ``[ingest] max_backoff``) and honour a
server's Retry-After on 429/503. Nothing a feed or page contains can stop the poller: every
failure is counted in ``marsad_feed_fetches_total``, logged on one line and kept in the feed's
state for ``marsad feeds list``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable

from ingest.articles import (Article, PageTooComplex, extract_article, is_arabic,
                             looks_non_arabic)
from ingest.feeds import FeedItem, parse_feed
from ingest.fetch import FetchError, Fetcher, FetchRefused, Limits, Response, policy_from_config
from ingest.guard import Refused, redact_text, redact_url
from ingest.polite import HostGate, Robots
from ingest.state import Feed, FeedState, FeedStore, active_feeds, state_path
from marsad import metrics
from marsad.config import Config, parse_duration
from marsad.records import Document, RecordError, TooLarge

log = logging.getLogger(__name__)

Send = Callable[[list[Document]], Awaitable[object]]

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
               "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
ARTICLE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_MAX_VALIDATOR = 1024  # longer ETag / Last-Modified values are not stored or sent back
# Article fetches in flight across all feeds: a feed listing thousands of links on many hosts
# must not open thousands of connections (HostGate only bounds each host).
_ARTICLE_SLOTS = 32


class RobotsDisallowed(FetchError):
    result = "robots_disallowed"


def document_id(feed: str, identity: str) -> str:
    return hashlib.sha256(f"{feed}\0{identity}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


def first_poll(state: FeedState, due: float) -> float:
    """When a feed is first polled after a start: when its last run scheduled it, unless it was
    backing off from a refusal by this machine's own address policy, which a restart is how an
    operator changes (`[ingest] allow_hosts`); then at ``due``, with the other feeds."""
    refused = (state.last_error or "").startswith("refused:") and (
        state.last_error_at or 0) > (state.last_success or 0)
    if state.next_poll and state.next_poll > due and not refused:
        return state.next_poll
    return due


class Poller:
    """Use as ``async with Poller(...) as poller``: it owns the HTTP session."""

    def __init__(self, config: Config, send: Send, store: FeedStore,
                 rng: random.Random | None = None, refresh: float = 30.0):
        self.config = config
        self.ingest = config.ingest
        self.send = send
        self.store = store
        self.rng = rng or random.Random()
        self.refresh = refresh  # how often imported feeds are re-read from the store
        self.max_backoff = parse_duration(self.ingest.max_backoff, "ingest.max_backoff")
        self.gate = HostGate(self.ingest.per_host_concurrency,
                             parse_duration(self.ingest.host_delay, "ingest.host_delay",
                                            allow_zero=True))
        self.fetcher = Fetcher(Limits.from_config(self.ingest), policy_from_config(self.ingest))
        self.robots = Robots(self.fetcher, self.gate)
        self._article_slots = asyncio.Semaphore(_ARTICLE_SLOTS)

    async def __aenter__(self) -> Poller:
        await self.fetcher.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fetcher.__aexit__(*exc)

    async def run(self) -> None:
        """Poll every active feed until cancelled; feeds imported or removed meanwhile are
        picked up within ``refresh`` seconds."""
        tasks: dict[str, tuple[Feed, asyncio.Task[None]]] = {}
        try:
            while True:
                try:
                    current = {feed.name: feed for feed in active_feeds(self.config, self.store)}
                except sqlite3.Error as exc:  # locked or damaged store: keep polling what runs
                    log.error("cannot read imported feeds from %s: %s", self.store.path, exc)
                    current = {name: feed for name, (feed, _task) in tasks.items()}
                for name, (feed, task) in list(tasks.items()):
                    if current.get(name) != feed:
                        task.cancel()
                        del tasks[name]
                for name, feed in current.items():
                    if name not in tasks:
                        tasks[name] = (feed, asyncio.create_task(self._poll_forever(feed),
                                                                 name=f"feed {name}"))
                await asyncio.sleep(self.refresh)
        finally:
            for _feed, task in tasks.values():
                task.cancel()
            await asyncio.gather(*(task for _feed, task in tasks.values()),
                                 return_exceptions=True)

    async def _poll_forever(self, feed: Feed) -> None:
        now = time.time()
        # Polls due at start-up are spread a little, so a restart does not hit every feed at once.
        next_poll = now + self.rng.uniform(0, min(feed.interval, 10.0) / 10)
        try:
            state = self._state(feed)
        except sqlite3.Error as exc:
            log.error("feed %s: cannot read its state: %s", feed.name, exc)
        else:
            if state.last_success:
                metrics.FEED_LAST_SUCCESS.labels(feed.name).set(state.last_success)
            next_poll = first_poll(state, next_poll)
        while True:
            await asyncio.sleep(max(0.0, next_poll - time.time()))
            try:
                next_poll = await self.poll(feed)
            except Exception as exc:  # noqa: BLE001 - e.g. the state store failing mid-poll
                metrics.ERRORS.labels("fetch", type(exc).__name__).inc()
                log.error("feed %s: poll failed: %s: %s", feed.name, type(exc).__name__,
                          redact_text(str(exc)))
                next_poll = time.time() + feed.interval

    def _state(self, feed: Feed) -> FeedState:
        return self.store.ensure(feed.name, feed.url, feed.interval_text, feed.arabic_only,
                                 feed.origin)

    async def poll(self, feed: Feed) -> float:
        """One poll of ``feed``; returns when the next one is due. Feed, network and page
        problems are counted and recorded in the feed's state, never raised."""
        state = self._state(feed)
        started = time.time()
        headers = {"Accept": FEED_ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            response = await self._fetch(feed, "feed", feed.url, headers)
            if response.status == 304:
                self._count(feed, "feed", "not_modified")
                return self._succeeded(feed, started, response, keep_validators=True)
            parsed = await asyncio.to_thread(parse_feed, response.body, response.content_type,
                                             response.url)
            emitted = await self._emit(feed, parsed.items, started)
            log.info("feed %s: %d items, %d new documents", feed.name, len(parsed.items), emitted)
            if parsed.error is not None:
                self._count(feed, "feed", "parse_error")
                return self._failed(feed, state, "parse_error", parsed.error, None)
            self._count(feed, "feed", "ok")
            return self._succeeded(feed, started, response, keep_validators=False)
        except FetchError as exc:
            self._count(feed, "feed", exc.result)
            return self._failed(feed, state, exc.result, str(exc),
                                getattr(exc, "retry_after", None))
        except Exception as exc:  # noqa: BLE001 - one feed's surprise must not stop the others
            self._count(feed, "feed", "error")
            metrics.ERRORS.labels("fetch", type(exc).__name__).inc()
            return self._failed(feed, state, "error", f"{type(exc).__name__}: {exc}", None)

    async def _fetch(self, feed: Feed, kind: str, url: str,
                     headers: dict[str, str]) -> Response:
        try:
            self.fetcher.policy.check_url(url)  # before robots.txt: no request at all then
        except Refused as exc:
            raise FetchRefused(str(exc)) from None
        if self.ingest.respect_robots and not await self.robots.allowed(url, feed.name):
            raise RobotsDisallowed(f"robots.txt disallows {redact_url(url)}")

        async def robots_allow(target: str) -> None:
            # A redirect, to this site or another, is a URL fetched like any other.
            if not await self.robots.allowed(target, feed.name):
                raise RobotsDisallowed(f"robots.txt disallows {redact_url(target)}, "
                                       f"where {redact_url(url)} redirects")

        async with self.gate.slot(url):
            started = time.monotonic()
            try:
                return await self.fetcher.get(
                    url, headers, on_redirect=robots_allow if self.ingest.respect_robots else None)
            finally:
                metrics.FEED_FETCH_LATENCY.labels(feed.name, kind).observe(
                    time.monotonic() - started)

    async def _emit(self, feed: Feed, items: list[FeedItem], now: float) -> int:
        """Sends a Document for each item not seen before, in order; returns how many."""
        fresh_keys = self.store.unseen(feed.name, [item.key for item in items], now)
        fresh = [item for item in items if item.key in fresh_keys]
        # Articles are fetched concurrently (HostGate keeps it polite) and sent in feed order.
        tasks = [asyncio.create_task(self._document(feed, item)) for item in fresh]
        emitted = 0
        try:
            for item, task in zip(fresh, tasks):
                doc = await task
                if isinstance(doc, Document):
                    await self.send([doc])
                    metrics.FEED_ITEMS.labels(feed.name).inc()
                    metrics.DOCUMENTS_OUT.labels("fetch").inc()
                    emitted += 1
                    self.store.mark_seen(feed.name, item.key, now)
                else:
                    self.store.mark_seen(feed.name, item.key, now, skipped=doc)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.store.prune(feed.name, self.ingest.seen_limit)
        return emitted

    async def _document(self, feed: Feed, item: FeedItem) -> Document | str:
        """The item as a Document, or why it is skipped (counted and logged)."""
        if feed.arabic_only and looks_non_arabic(f"{item.title or ''}\n{item.content}"):
            return self._skip(feed, item, "non_arabic")
        article = await self._article(feed, item) if self.ingest.fetch_articles else None
        fetched_at = time.time()
        if article is not None:
            text, text_source = article.text, "article"
        else:
            text, text_source = item.content, "feed"
        title = item.title or (article.title if article else None)
        if not text.strip():
            return self._skip(feed, item, "empty")
        if feed.arabic_only and not is_arabic(f"{title or ''}\n{text}"):
            return self._skip(feed, item, "non_arabic")
        try:
            return Document.accept({
                "id": document_id(feed.name, item.identity),
                "text": text,
                "url": item.link,
                "source": feed.name,
                "title": title,
                "published": item.published or (article.date if article else None),
                "summary": item.summary,
                "ingested_at": fetched_at,
                "text_source": text_source,
            })
        except RecordError as exc:
            log.info("feed %s: item %s is not a valid document: %s", feed.name,
                     redact_text(item.identity), exc)
            return self._skip(feed, item, "too_large" if isinstance(exc, TooLarge) else "invalid")

    async def _article(self, feed: Feed, item: FeedItem) -> Article | None:
        if item.link is None:
            return None
        try:
            async with self._article_slots:
                response = await self._fetch(feed, "article", item.link,
                                             {"Accept": ARTICLE_ACCEPT})
            article = await asyncio.to_thread(extract_article, response.body,
                                              response.content_type, response.url, item.title)
        except FetchError as exc:
            self._count(feed, "article", exc.result)
            log.info("feed %s: article %s: %s; using the feed's text", feed.name,
                     redact_url(item.link), redact_text(str(exc)))
            return None
        except PageTooComplex as exc:
            self._count(feed, "article", "too_large")
            log.info("feed %s: article %s: %s, not extracted; using the feed's text", feed.name,
                     redact_url(item.link), exc)
            return None
        self._count(feed, "article", "ok" if article is not None else "parse_error")
        if article is None:
            log.info("feed %s: no text in article %s; using the feed's text", feed.name,
                     redact_url(item.link))
        return article

    def _skip(self, feed: Feed, item: FeedItem, reason: str) -> str:
        metrics.FEED_ITEMS_SKIPPED.labels(feed.name, reason).inc()
        log.info("feed %s: skipped item %s (%s)", feed.name,
                 redact_url(item.link) if item.link else redact_text(item.identity), reason)
        return reason

    @staticmethod
    def _count(feed: Feed, kind: str, result: str) -> None:
        metrics.FEED_FETCHES.labels(feed.name, kind, result).inc()

    def _succeeded(self, feed: Feed, at: float, response: Response,
                   keep_validators: bool) -> float:
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        next_poll = time.time() + feed.interval
        self.store.record_success(
            feed.name, at, next_poll,
            etag if etag and len(etag) <= _MAX_VALIDATOR else None,
            modified if modified and len(modified) <= _MAX_VALIDATOR else None,
            keep_validators)
        metrics.FEED_LAST_SUCCESS.labels(feed.name).set(at)
        return next_poll

    def _failed(self, feed: Feed, state: FeedState, result: str, error: str,
                retry_after: float | None) -> float:
        failures = state.failures + 1
        delay = min(self.max_backoff, feed.interval * 2 ** min(failures - 1, 30))
        delay *= self.rng.uniform(0.8, 1.2)  # jitter: failed feeds do not retry in lockstep
        if retry_after is not None:
            delay = max(delay, retry_after)
        now = time.time()
        message = redact_text(f"{result}: {error}")
        self.store.record_failure(feed.name, now, message, now + delay)
        log.warning("feed %s (%s): %s; failure %d in a row, next poll in %.0fs", feed.name,
                    redact_url(feed.url), message, failures, delay)
        return now + delay


async def run_feeds(config: Config, send: Send) -> None:
    """The service's poller: runs until cancelled when feeds are configured or imported, and
    returns at once otherwise."""
    path = state_path(config.service.data_dir)
    if not config.feeds and not path.exists():
        return
    with FeedStore(path) as store:
        if not config.feeds and not store.imported():
            return
        async with Poller(config, send, store) as poller:
            log.warning("polling %d feeds; state in %s",
                        len(active_feeds(config, store)), path)
            await poller.run()
