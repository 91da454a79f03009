"""The HTTP layer of ingest: address policy (SSRF), limits, redirects, politeness, redaction.

Everything talks to servers on 127.0.0.x only; names resolve through fake resolvers."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import time
from typing import Any

import pytest

from ingest.fetch import (
    FetchError, Fetcher, FetchRefused, FetchTimeout, GuardedResolver, HttpStatus, Limits,
    TooLarge, TooManyRedirects, retry_after_seconds,
)
from ingest.guard import AddressPolicy, Refused, parse_allow_hosts, redact_text, redact_url
from ingest import polite
from ingest.polite import HostGate, Robots
from marsad.config import ConfigError, load_config
from tests.feed_server import FeedServer

LIMITS = Limits(connect_timeout=1.0, read_timeout=0.5, total_timeout=3.0, max_bytes=1_000_000,
                max_redirects=3)


class FakeResolver:
    """Stands in for DNS: name -> addresses, changeable between calls (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[dict[str, Any]]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for ip in self.table[host]]

    async def close(self) -> None:
        pass


def allow(server: FeedServer, *extra: str) -> AddressPolicy:
    return AddressPolicy(False, parse_allow_hosts([f"{server.host}:{server.port}", *extra]))


def fetch(server_policy: AddressPolicy, url: str, limits: Limits = LIMITS,
          resolver: FakeResolver | None = None, **kwargs: Any) -> Any:
    async def go() -> Any:
        async with Fetcher(limits, server_policy, resolver) as fetcher:
            return await fetcher.get(url, **kwargs)
    return asyncio.run(go())


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


@pytest.fixture
def other():
    """A second server on another loopback address: what a redirect must not reach."""
    with FeedServer("127.0.0.2") as running:
        running.static("/secret", b"internal", "text/plain")
        yield running


# Address policy


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
    "169.254.169.254", "169.254.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1",
    "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
    "100.100.100.200", "fd00:ec2::254",
    # IPv6 forms that embed a private IPv4 address, and reserved or deprecated ranges.
    "::7f00:1", "::ffff:0:a00:1", "64:ff9b:1::a00:1", "2002:a00:1::1", "fec0::1", "5f00::1",
])
def test_non_public_addresses_are_refused_by_default(address):
    assert not AddressPolicy().address_allowed("feeds.example", 80, address)


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700::6810:84e5"])
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().address_allowed("feeds.example", 443, address)


def test_allow_private_opens_private_ranges_but_not_metadata_or_multicast():
    policy = AddressPolicy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.5", "192.168.0.10", "fc00::1"):
        assert policy.address_allowed("intranet", 80, address)
    for address in ("169.254.169.254", "fd00:ec2::254", "0.0.0.0", "224.0.0.1"):
        assert not policy.address_allowed("intranet", 80, address)


def test_allow_hosts_entries_are_exact():
    rules = parse_allow_hosts(["127.0.0.1:8080", "intranet.local", "10.0.0.0/8",
                               "[::1]:9000", "169.254.169.254"])
    policy = AddressPolicy(False, rules)
    assert policy.address_allowed("127.0.0.1", 8080, "127.0.0.1")
    assert not policy.address_allowed("127.0.0.1", 8081, "127.0.0.1")  # other port
    assert not policy.address_allowed("localhost", 80, "127.0.0.1")  # other port
    assert policy.address_allowed("intranet.local", 80, "192.168.5.5")  # trusted name
    assert not policy.address_allowed("other.local", 80, "192.168.5.5")
    assert policy.address_allowed("x", 80, "10.20.30.40")  # network
    assert policy.address_allowed("::1", 9000, "::1")
    assert policy.address_allowed("metadata", 80, "169.254.169.254")  # only when listed


@pytest.mark.parametrize("entry", ["http://x", "host:port", "a b", "10.0.0.0/33", "[::1]:0", ""])
def test_bad_allow_hosts_entries_are_config_errors(tmp_path, entry):
    path = tmp_path / "marsad.toml"
    path.write_text(f'[ingest]\nallow_hosts = ["{entry}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="ingest.allow_hosts"):
        load_config(path, env={})


def test_ingest_config_validation_names_the_key(tmp_path):
    path = tmp_path / "marsad.toml"
    for text, key in [('max_redirects = 99', "ingest.max_redirects"),
                      ('read_timeout = "soon"', "ingest.read_timeout"),
                      ('host_delay = "-1s"', "ingest.host_delay"),
                      ('max_response_bytes = 10', "ingest.max_response_bytes")]:
        path.write_text(f"[ingest]\n{text}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=key):
            load_config(path, env={})
    path.write_text('[ingest]\nhost_delay = "0"\nallow_private = true\n'
                    '[[feeds]]\nname = "a"\nurl = "https://a.example/rss"\narabic_only = false\n',
                    encoding="utf-8")
    config = load_config(path, env={})
    assert config.ingest.allow_private and config.feeds[0].arabic_only is False


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed", "gopher://x/",
                                 "http:///nohost", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:80/", "http://0.0.0.0:22/"])
def test_check_url_refuses_bad_schemes_and_literal_addresses(url):
    with pytest.raises(Refused):
        AddressPolicy().check_url(url)


def test_resolver_checks_every_resolution_so_rebinding_is_refused():
    resolver = FakeResolver({"news.example": ["93.184.216.34"]})
    guarded = GuardedResolver(AddressPolicy(), resolver)
    assert [r["host"] for r in asyncio.run(guarded.resolve("news.example", 443))] == ["93.184.216.34"]
    resolver.table["news.example"] = ["127.0.0.1"]
    with pytest.raises(Refused, match="not public"):
        asyncio.run(guarded.resolve("news.example", 443))
    # Mixed answers keep only the public address: the connection can only go there.
    resolver.table["news.example"] = ["10.0.0.1", "93.184.216.34"]
    assert [r["host"] for r in asyncio.run(guarded.resolve("news.example", 443))] == ["93.184.216.34"]


# Redaction


@pytest.mark.parametrize("url, shown", [
    ("https://user:s3cret@feeds.example/rss?x=1", "https://feeds.example/rss?x=1"),
    ("https://feeds.example/rss?token=abc&lang=ar&api_key=k&sig=zz",
     "https://feeds.example/rss?token=***&lang=ar&api_key=***&sig=***"),
    ("https://x.example/a?X-Amz-Signature=1&Password=2&page=3#access_token=4",
     "https://x.example/a?X-Amz-Signature=***&Password=***&page=3#access_token=***"),
    # Some servers separate parameters with ";", in the query or the path.
    ("https://x.example/feed?lang=ar;token=abc", "https://x.example/feed?lang=ar;token=***"),
    ("https://x.example/rss;session=s1?a=1", "https://x.example/rss;session=***?a=1"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_urls_inside_messages():
    message = "failed http://bob:pw@h.example/f?key=K1 then https://h.example/ok"
    assert redact_text(message) == "failed http://h.example/f?key=*** then https://h.example/ok"
    # Whatever the scheme: an OPML list may hold ftp:// or feed:// subscriptions.
    assert redact_text("skipped ftp://reader:hunter2@feeds.example/rss.xml: not http(s)") == (
        "skipped ftp://feeds.example/rss.xml: not http(s)")
    # The punctuation after a URL is the message's, not the URL's.
    assert redact_text("skipped feed://x.example/rss?token=t1: not http(s)") == (
        "skipped feed://x.example/rss?token=***: not http(s)")


# Fetching


def test_fetch_sends_user_agent_and_handles_conditional_get(server):
    server.static("/feed", "<rss/>".encode(), "application/rss+xml", etag='"v1"')
    policy = allow(server)
    first = fetch(policy, server.url("/feed"))
    assert first.status == 200 and first.body == b"<rss/>" and first.headers["ETag"] == '"v1"'
    again = fetch(policy, server.url("/feed"), headers={"If-None-Match": '"v1"'})
    assert again.status == 304 and again.body == b""
    agent = server.requests[0][1]["User-Agent"]
    assert agent.startswith("marsad/") and "(+http" in agent


def test_gzip_is_decoded_and_the_cap_applies_after_decompression(server):
    payload = ("<rss>" + "خبر " * 50_000 + "</rss>").encode()  # about 450 kB, inflated
    server.static("/zipped", gzip.compress(payload), "application/rss+xml",
                  headers={"Content-Encoding": "gzip"})
    compressed = server.gzip_bomb("/bomb", 200)
    assert compressed < LIMITS.max_bytes  # small on the wire: only decompression can catch it
    policy = allow(server)
    assert fetch(policy, server.url("/zipped")).body == payload
    started = time.monotonic()
    with pytest.raises(TooLarge, match="after decompression"):
        fetch(policy, server.url("/bomb"))
    assert time.monotonic() - started < 5


def test_large_bodies_stop_at_the_cap_declared_or_not(server):
    server.flood("/flood", 50)
    server.flood("/declared", 50, declare_length=True)
    policy = allow(server)
    with pytest.raises(TooLarge, match="over the 1000000-byte cap"):
        fetch(policy, server.url("/flood"))
    with pytest.raises(TooLarge, match="Content-Length"):
        fetch(policy, server.url("/declared"))


def test_read_timeout_and_total_deadline(server):
    server.hang("/hang", 5)
    server.slow("/slow", 0.3)
    policy = allow(server)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(policy, server.url("/hang"))
    assert time.monotonic() - started < 5
    with pytest.raises(FetchTimeout):
        fetch(policy, server.url("/slow"), Limits(total_timeout=0.1))
    assert fetch(policy, server.url("/slow")).body == b"ok"


def test_connection_refused_is_a_network_error(server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    policy = AddressPolicy(False, parse_allow_hosts([f"127.0.0.1:{port}"]))
    with pytest.raises(FetchError) as caught:
        fetch(policy, f"http://127.0.0.1:{port}/feed")
    assert caught.value.result == "network_error"


def test_redirects_are_followed_checked_and_capped(server, other):
    server.static("/target", b"here", "text/plain")
    server.redirect("/hop", "/target", 301)
    server.redirect("/loop", "/loop")
    server.redirect("/to-other-address", other.url("/secret"))
    server.redirect("/to-other-port", f"http://127.0.0.1:{other.port}/secret")
    server.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
    server.redirect("/to-file", "file:///etc/passwd")
    server.redirect("/to-name", f"http://internal.test:{other.port}/secret")
    policy = allow(server)
    resolver = FakeResolver({"internal.test": [other.host]})
    response = fetch(policy, server.url("/hop"), resolver=resolver)
    assert response.body == b"here" and response.url.endswith("/target")
    with pytest.raises(TooManyRedirects):
        fetch(policy, server.url("/loop"))
    assert server.hits["/loop"] == LIMITS.max_redirects + 1
    for path in ("/to-other-address", "/to-other-port", "/to-metadata", "/to-file"):
        with pytest.raises(FetchRefused):
            fetch(policy, server.url(path), resolver=resolver)
    # A name is checked on what it resolves to (127.0.0.2, not allowed), and refused before
    # any connection is made.
    with pytest.raises(FetchRefused, match="internal.test resolves to 127.0.0.2"):
        fetch(policy, server.url("/to-name"), resolver=resolver)
    assert other.hits["/secret"] == 0
    # Listing the name lets it through, to the address the check saw.
    trusted = allow(server, f"internal.test:{other.port}")
    assert fetch(trusted, server.url("/to-name"), resolver=resolver).body == b"internal"
    assert other.hits["/secret"] == 1


def test_http_errors_carry_retry_after(server):
    server.status("/busy", 429, {"Retry-After": "120"})
    server.status("/down", 503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    server.status("/gone", 410)
    policy = allow(server)
    with pytest.raises(HttpStatus) as busy:
        fetch(policy, server.url("/busy"))
    assert busy.value.status == 429 and busy.value.retry_after == 120
    with pytest.raises(HttpStatus) as down:
        fetch(policy, server.url("/down"))
    assert down.value.retry_after == 86400  # capped at a day
    with pytest.raises(HttpStatus) as gone:
        fetch(policy, server.url("/gone"))
    assert gone.value.retry_after is None and gone.value.result == "http_error"


def test_retry_after_forms():
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:00 GMT", now=40) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_credentials_never_reach_the_logs(server, caplog, tmp_path):
    from ingest.poller import Poller
    from ingest.state import Feed, FeedStore
    from marsad.config import Config, IngestConfig

    server.status("/private-feed", 500)
    config = Config(ingest=IngestConfig(allow_hosts=[f"127.0.0.1:{server.port}"],
                                        host_delay="0", respect_robots=False))
    url = f"http://reader:hunter2@127.0.0.1:{server.port}/private-feed?token=tok123&lang=ar"
    feed = Feed("secret-feed", url, 60.0, "1m", True, "config")

    async def go(store: FeedStore) -> None:
        async with Poller(config, _discard, store) as poller:
            await poller.poll(feed)

    caplog.set_level(logging.DEBUG)
    with FeedStore(tmp_path / "feeds.sqlite3") as store:
        asyncio.run(go(store))
        state = store.get("secret-feed")
    assert state is not None and state.last_error and "500" in state.last_error
    assert server.requests[0][1].get("Authorization", "").startswith("Basic ")
    logged = caplog.text + state.last_error
    assert "secret-feed" in caplog.text
    assert "hunter2" not in logged and "tok123" not in logged and "reader" not in logged


async def _discard(_docs: list) -> None:
    return None


# Politeness


def test_host_gate_limits_concurrency_and_spaces_requests(server):
    server.slow("/work", 0.3)
    policy = allow(server)

    async def go(gate: HostGate, count: int) -> float:
        async with Fetcher(LIMITS, policy) as fetcher:
            async def one() -> None:
                async with gate.slot(server.url("/work")):
                    await fetcher.get(server.url("/work"))
            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(count)))
            return time.monotonic() - started

    elapsed = asyncio.run(go(HostGate(concurrency=2, delay=0), 6))
    assert server.peak == 2
    assert elapsed >= 0.85  # three rounds of two
    server.peak = 0
    starts_before = len(server.requests)
    elapsed = asyncio.run(go(HostGate(concurrency=4, delay=0.25), 3))
    assert len(server.requests) - starts_before == 3
    assert elapsed >= 0.5 + 0.3  # second and third request waited 0.25 s each


def test_robots_txt_rules_and_unreachable_robots(server):
    server.static("/robots.txt", b"User-agent: *\nDisallow: /private/\n\n"
                                 b"User-agent: marsad\nDisallow: /no-marsad/\nCrawl-delay: 2\n",
                  "text/plain")
    policy = allow(server)

    async def go() -> list[bool]:
        async with Fetcher(LIMITS, policy) as fetcher:
            gate = HostGate(2, 0)
            robots = Robots(fetcher, gate)
            answers = [await robots.allowed(server.url(p), "f")
                       for p in ("/news/1", "/no-marsad/x", "/private/x")]
            assert gate._host("http://127.0.0.1:%d" % server.port).delay == 2
            return answers

    # The marsad group applies, not the * group: /private/ is allowed for marsad.
    assert asyncio.run(go()) == [True, False, True]
    assert server.hits["/robots.txt"] == 1  # cached

    with FeedServer() as down:
        down.status("/robots.txt", 503)

        async def unreachable() -> None:
            async with Fetcher(LIMITS, allow(down)) as fetcher:
                await Robots(fetcher, HostGate(1, 0)).allowed(down.url("/feed"), "f")

        with pytest.raises(FetchError) as caught:
            asyncio.run(unreachable())
        assert caught.value.result == "http_error" and "robots.txt unreachable" in str(caught.value)

    with FeedServer() as missing:  # 404: everything allowed
        async def absent() -> bool:
            async with Fetcher(LIMITS, allow(missing)) as fetcher:
                return await Robots(fetcher, HostGate(1, 0)).allowed(missing.url("/x"), "f")

        assert asyncio.run(absent()) is True


def test_robots_txt_is_read_as_rfc_9309_says(server):
    """The longest matching rule wins, * and $ are wildcards, and a file past the 512 KiB limit
    is parsed as far as the limit instead of shutting the whole site."""
    server.static("/robots.txt", b"User-agent: *\nAllow: /\nDisallow: /private/\n"
                                 b"Disallow: /*.pdf$\nAllow: /private/press/\n"
                                 + b"# padding\n" * 60_000 + b"Disallow: /news/\n",
                  "text/plain")

    async def go() -> list[bool]:
        async with Fetcher(LIMITS, allow(server)) as fetcher:
            robots = Robots(fetcher, HostGate(2, 0))
            return [await robots.allowed(server.url(p), "f") for p in (
                "/private/secret.html", "/private/press/1", "/files/report.pdf",
                "/files/report.pdf?page=2", "/news/1")]

    # /news/ is disallowed past the limit only: unread, so allowed.
    assert asyncio.run(go()) == [False, True, False, True, True]


def test_a_redirect_to_a_page_robots_txt_disallows_is_not_followed(server, tmp_path):
    from ingest.poller import Poller, RobotsDisallowed
    from ingest.state import Feed, FeedStore
    from marsad.config import Config, IngestConfig

    with FeedServer("127.0.0.2") as other:
        other.static("/robots.txt", b"User-agent: *\nDisallow: /\n", "text/plain")
        other.static("/page", b"<html><p>forbidden</p></html>", "text/html")
        server.redirect("/go", other.url("/page"))
        config = Config(ingest=IngestConfig(
            allow_hosts=[f"127.0.0.1:{server.port}", f"127.0.0.2:{other.port}"], host_delay="0"))
        feed = Feed("f", server.url("/feed"), 60.0, "1m", True, "config")

        async def go(store: FeedStore) -> None:
            async with Poller(config, _discard, store) as poller:
                await poller._fetch(feed, "article", server.url("/go"), {})

        with FeedStore(tmp_path / "feeds.sqlite3") as store, \
                pytest.raises(RobotsDisallowed, match="redirects"):
            asyncio.run(go(store))
        assert other.hits["/page"] == 0 and other.hits["/robots.txt"] == 1


@pytest.mark.parametrize("ttl", [0.0, 3600.0], ids=["expired", "fresh"])
def test_robots_rules_of_hosts_not_seen_for_long_are_forgotten(monkeypatch, ttl):
    # Months of articles reach ever more hosts: expired rules make room instead of piling up,
    # and past the cap so do the oldest fresh ones.
    monkeypatch.setattr(polite, "_MAX_IDLE_HOSTS", 2)
    monkeypatch.setattr(polite, "_MAX_CACHED_RULES", 2)
    monkeypatch.setattr(polite, "ROBOTS_TTL", ttl)
    servers = [FeedServer().start() for _ in range(4)]
    try:
        async def go() -> tuple[int, int]:
            policy = AddressPolicy(False, parse_allow_hosts([f"{s.host}:{s.port}" for s in servers]))
            async with Fetcher(LIMITS, policy) as fetcher:
                robots = Robots(fetcher, HostGate(1, 0))
                for server in servers:
                    assert await robots.allowed(server.url("/x"), "f")
                return len(robots._rules), len(robots._locks)

        assert asyncio.run(go()) == (2, 2)
    finally:
        for server in servers:
            server.stop()
