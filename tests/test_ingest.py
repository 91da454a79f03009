"""Feed ingest end to end: real-world-shaped Arabic feeds and article pages on a local server,
polled by the poller, into documents (and, for the service test, through a real broker into
alerts). Bad feeds are counted and never stop the good ones; restarts emit no repeats."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from kafka import KafkaConsumer
from prometheus_client import REGISTRY

from ingest.feeds import parse_feed
from ingest.poller import Poller, document_id, first_poll
from ingest.state import FeedState, FeedStore, active_feeds, state_path
from marsad.cli import main as marsad_main
from marsad.config import Config, load_config
from marsad.records import Document
from tests.conftest import ROOT, Service, read_jsonl, wait_for
from tests.feed_server import (
    FeedServer, article_html, atom, corpus_articles, first_sentence, rdf, rss2,
)

CLAIM = "قصفت طائرات روسية مواقع لتنظيم داعش في مدينة البوكمال."
ENGLISH = {"title": "Markets close higher on Friday",
           "description": "Stocks rallied in late trading as investors weighed new data."}


def norm(text: str) -> str:
    return " ".join(text.split())


def fetches(feed: str, result: str, kind: str = "feed") -> float:
    return REGISTRY.get_sample_value("marsad_feed_fetches_total",
                                     {"feed": feed, "kind": kind, "result": result}) or 0.0


def skipped(feed: str, reason: str) -> float:
    return REGISTRY.get_sample_value("marsad_feed_items_skipped_total",
                                     {"feed": feed, "reason": reason}) or 0.0


@dataclass
class Expected:
    title: str
    text: str
    text_source: str


@dataclass
class Site:
    server: FeedServer
    other: FeedServer
    prefix: str
    good: dict[str, list[Expected]] = field(default_factory=dict)  # feed -> items
    bad: dict[str, str] = field(default_factory=dict)  # feed -> expected fetch result
    paths: dict[str, str] = field(default_factory=dict)  # feed -> path
    bom_body: bytes = b""

    def feed_name(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def config_text(self, data_dir: Path, extra: str = "", interval: str = "1h") -> str:
        feeds = "".join(f'\n[[feeds]]\nname = "{self.feed_name(k)}"\nurl = "{self.server.url(p)}"'
                        f'\ninterval = "{interval}"\n' for k, p in self.paths.items())
        return f'''
[service]
data_dir = "{data_dir}"

[ingest]
allow_hosts = ["127.0.0.1:{self.server.port}"]
connect_timeout = "1s"
read_timeout = "0.5s"
fetch_timeout = "3s"
max_response_bytes = 2_000_000
host_delay = "0"
per_host_concurrency = 4
{extra}
{feeds}'''


def _items(articles: list[dict], server: FeedServer, start: int, links: list[str] | None = None
           ) -> list[dict]:
    return [{"title": a["title"], "link": links[n] if links else server.url(f"/a/{start + n}.html"),
             "guid": f"jawhara-{a['id']}", "description": first_sentence(a["text"]),
             "i": start + n} for n, a in enumerate(articles)]


def build_site(prefix: str) -> tuple[Site, list[FeedServer]]:
    """Every feed shape and failure the issue lists, on 127.0.0.1; 127.0.0.2 is the internal
    address a redirect must not reach."""
    arts = corpus_articles(16)
    server, other = FeedServer().start(), FeedServer("127.0.0.2").start()
    site = Site(server, other, prefix)
    server.static("/robots.txt", b"User-agent: *\nDisallow: /private/\n", "text/plain")
    other.static("/feed.xml", rss2(_items(arts[:2], other, 0), "utf-8"), "application/rss+xml")

    def pages(first: int, articles: list[dict], charset: str, header_charset: bool) -> None:
        for n, article in enumerate(articles):
            ctype = f"text/html; charset={charset}" if header_charset else "text/html"
            server.static(f"/a/{first + n}.html", article_html(article, charset), ctype)

    def add(key: str, path: str, expected: list[Expected] | None = None,
            bad: str | None = None) -> None:
        site.paths[key] = path
        if expected is not None:
            site.good[site.feed_name(key)] = expected
        if bad is not None:
            site.bad[site.feed_name(key)] = bad

    def from_article(a: dict) -> Expected:
        return Expected(a["title"], a["text"], "article")

    def from_feed(a: dict) -> Expected:
        return Expected(a["title"], first_sentence(a["text"]), "feed")

    # RSS 2.0 in windows-1256 (declared in the XML only); pages in windows-1256 declared in a
    # <meta> only. The last item's page is missing: the feed's description stands in.
    items = _items(arts[0:4], server, 0)
    items[3]["link"] = server.url("/a/missing.html")
    pages(0, arts[0:3], "windows-1256", header_charset=False)
    server.static("/rss-1256.xml", rss2(items, "windows-1256"), "application/rss+xml")
    add("rss1256", "/rss-1256.xml", [*map(from_article, arts[0:3]), from_feed(arts[3])])

    # Atom in UTF-8; one entry links to the cloud metadata address: refused, feed text used.
    # Another links with an Arabic path, as Arabic sites do: it must arrive percent-encoded.
    items = _items(arts[4:7], server, 4)
    items[2]["link"] = "http://169.254.169.254/latest/meta-data/"
    items[1]["link"] = server.url("/ar/article/الترجي-يخوض/5")
    pages(4, arts[4:6], "utf-8", header_charset=True)
    server.routes[quote("/ar/article/الترجي-يخوض/5")] = server.routes.pop("/a/5.html")
    server.static("/atom.xml", atom(items), "application/atom+xml")
    add("atom", "/atom.xml", [*map(from_article, arts[4:6]), from_feed(arts[6])])

    # RSS 1.0 (RDF) in ISO-8859-6, charset in the HTTP header; identity from the link. The last
    # page is an HTML bomb under the size cap (1.7 MB of links, a minute of extraction): not
    # extracted, the feed's text stands in.
    items = _items(arts[7:10], server, 7)
    pages(7, arts[7:9], "utf-8", header_charset=False)
    server.static("/a/9.html", b"<html><body>" + b"<a href=/x>y</a> " * 100_000,
                  "text/html; charset=utf-8")
    server.static("/rdf.xml", rdf(items, "iso-8859-6"), "application/rdf+xml; charset=ISO-8859-6")
    add("rdf", "/rdf.xml", [*map(from_article, arts[7:9]), from_feed(arts[9])])

    # UTF-8 with a BOM and an ETag (the second poll is a 304), an English item (skipped
    # without fetching its page) and an item with neither guid nor link (content hash).
    items = _items(arts[10:12], server, 10)
    items.append({**ENGLISH, "link": server.url("/a/english.html"), "guid": "en-1", "i": 12})
    items.append({"title": arts[12]["title"], "description": first_sentence(arts[12]["text"]),
                  "i": 13})
    # Nearly a megabyte of text in one item: too much for a Kafka message, so it is skipped.
    items.append({"title": "خبر طويل", "guid": "huge-1", "i": 14,
                  "description": "اشتباكات في محيط مدينة البوكمال. " * 15_000})
    pages(10, arts[10:12], "utf-8", header_charset=True)
    server.static("/a/english.html", b"<html><body><p>English</p></body></html>", "text/html")
    site.bom_body = rss2(items, "utf-8", declare=False, bom=True)
    server.static("/bom.xml", site.bom_body, "application/rss+xml", etag='"bom-v1"')
    add("bom", "/bom.xml", [*map(from_article, arts[10:12]), from_feed(arts[12])])

    # Broken XML: two good items, then an undefined entity and a cut-off end.
    items = _items(arts[13:15], server, 13)
    pages(13, arts[13:15], "utf-8", header_charset=True)
    body = rss2(items, "utf-8").replace(b"</channel></rss>", b"")
    body += "<item><title>خبر &nbsp; مكسور</title><guid>broken-3</guid><description>نص".encode()
    server.static("/broken.xml", body, "application/rss+xml")
    add("broken", "/broken.xml", list(map(from_article, arts[13:15])), bad="parse_error")

    server.status("/limited.xml", 429, {"Retry-After": "120"})
    add("limited", "/limited.xml", bad="http_error")
    server.hang("/hang.xml", 10)
    add("hang", "/hang.xml", bad="timeout")
    server.flood("/huge.xml", 50)
    add("huge", "/huge.xml", bad="too_large")
    server.gzip_bomb("/bomb.xml", 100)
    add("bomb", "/bomb.xml", bad="too_large")
    server.redirect("/redirect.xml", other.url("/feed.xml"))
    add("redirect", "/redirect.xml", bad="refused")
    server.static("/private/feed.xml", rss2(_items(arts[:1], server, 0), "utf-8"),
                  "application/rss+xml")
    add("private", "/private/feed.xml", bad="robots_disallowed")
    return site, [server, other]


@pytest.fixture
def site(shared_data, request):
    built, servers = build_site(request.node.name[5:25].replace("_", "-"))
    yield built
    for server in servers:
        server.stop()


def site_config(site: Site, tmp_path: Path, **kwargs: str) -> Config:
    path = tmp_path / "marsad.toml"
    path.write_text(site.config_text(tmp_path / "data", **kwargs), encoding="utf-8")
    return load_config(path, env={})


async def poll_all(config: Config, store: FeedStore) -> list[Document]:
    sent: list[Document] = []

    async def send(docs: list[Document]) -> None:
        sent.extend(docs)

    async with Poller(config, send, store, rng=random.Random(1)) as poller:
        await asyncio.gather(*(poller.poll(feed) for feed in active_feeds(config, store)))
    return sent


def check_documents(site: Site, docs: list[Document]) -> None:
    """Every good item exactly once, Arabic intact, marked with where its text came from."""
    by_feed: dict[str, list[Document]] = {}
    for doc in docs:
        by_feed.setdefault(doc.source or "", []).append(doc)
    assert len({d.id for d in docs}) == len(docs)
    for feed, expected in site.good.items():
        got = {d.title: d for d in by_feed.get(feed, [])}
        for item in expected:
            doc = got.get(item.title)
            assert doc is not None, (feed, item.title, sorted(got))
            assert doc.text_source == item.text_source, (feed, item.title)
            assert norm(doc.text) == norm(item.text), (feed, doc.text[:200])
            assert doc.published and doc.ingested_at > 0
            assert doc.url or item.text_source == "feed"
        assert len(by_feed.get(feed, [])) >= len(expected)
    # Only the broken feed may add what its parser recovered; nothing from the bad ones.
    allowed = set(site.good)
    assert set(by_feed) <= allowed, set(by_feed) - allowed


def test_poller_ingests_every_good_item_once_and_counts_each_bad_feed(site, tmp_path):
    config = site_config(site, tmp_path)
    store_path = state_path(config.service.data_dir)
    before = {f: fetches(f, r) for f, r in site.bad.items()}
    started = time.monotonic()
    with FeedStore(store_path) as store:
        docs = asyncio.run(poll_all(config, store))
        elapsed = time.monotonic() - started
        check_documents(site, docs)
        # The hanging feed costs its own timeouts (3 s at most), not the others' time.
        assert elapsed < 10, elapsed
        for feed, result in site.bad.items():
            assert fetches(feed, result) == before[feed] + 1, (feed, result)
        assert fetches(site.feed_name("rss1256"), "ok") >= 1
        assert fetches(site.feed_name("rss1256"), "http_error", "article") >= 1  # the 404 page
        assert fetches(site.feed_name("atom"), "refused", "article") >= 1
        assert fetches(site.feed_name("rdf"), "too_large", "article") >= 1  # the HTML bomb
        assert skipped(site.feed_name("bom"), "non_arabic") >= 1
        assert skipped(site.feed_name("bom"), "too_large") >= 1
        assert site.server.hits["/a/english.html"] == 0
        assert site.other.hits["/feed.xml"] == 0
        last_ok = REGISTRY.get_sample_value("marsad_feed_last_success_timestamp_seconds",
                                            {"feed": site.feed_name("rdf")})
        assert last_ok and abs(last_ok - time.time()) < 60

        limited = store.get(site.feed_name("limited"))
        assert limited and limited.failures == 1 and limited.last_error.startswith("http_error")
        assert limited.next_poll >= time.time() + 110  # Retry-After: 120
        hang = store.get(site.feed_name("hang"))
        assert hang and hang.last_error.startswith("timeout")
        rss = store.get(site.feed_name("rss1256"))
        assert rss and rss.items_seen == 4 and rss.items_emitted == 4 and rss.failures == 0
        bom = store.get(site.feed_name("bom"))  # `feeds list` says why items were not sent
        assert bom and bom.items_seen - bom.items_emitted >= 2
        assert bom.last_skip in ("non_arabic", "too_large")

        # Second poll: the ETag feed answers 304, the others have nothing new.
        not_modified = fetches(site.feed_name("bom"), "not_modified")
        assert asyncio.run(poll_all(config, store)) == []
        assert fetches(site.feed_name("bom"), "not_modified") == not_modified + 1
        conditional = [h for p, h in site.server.requests if p == "/bom.xml"]
        assert conditional[-1].get("If-None-Match") == '"bom-v1"'

    # A restart (new store connection, new poller) emits nothing again, even when the feed
    # drops its ETag so every item is read afresh.
    site.server.static("/bom.xml", site.bom_body, "application/rss+xml")
    pages_before = sum(site.server.hits[p] for p in site.server.hits if p.startswith("/a/"))
    with FeedStore(store_path) as store:
        assert asyncio.run(poll_all(config, store)) == []
    assert sum(site.server.hits[p] for p in site.server.hits if p.startswith("/a/")) == pages_before


# Parsing


@pytest.mark.parametrize("shape", ["rss-1256-declared", "rss-1256-header-only", "rss-8859-6",
                                   "rss-utf8-bom", "rss-utf8-bom-text-xml", "atom", "rdf-8859-6"])
def test_feed_encodings_arrive_as_intact_arabic(shared_data, shape):
    arts = corpus_articles(3)
    server_url = "http://news.example"
    items = [{"title": a["title"], "link": f"{server_url}/a/{n}", "guid": f"g{n}",
              "description": first_sentence(a["text"]), "i": n} for n, a in enumerate(arts)]
    body, ctype = {
        "rss-1256-declared": (rss2(items, "windows-1256"), "application/rss+xml"),
        "rss-1256-header-only": (rss2(items, "windows-1256", declare=False),
                                 "application/rss+xml; charset=windows-1256"),
        "rss-8859-6": (rss2(items, "iso-8859-6"), "text/xml; charset=ISO-8859-6"),
        "rss-utf8-bom": (rss2(items, "utf-8", declare=False, bom=True), "application/rss+xml"),
        "rss-utf8-bom-text-xml": (rss2(items, "utf-8", bom=True), "text/xml"),
        "atom": (atom(items), "application/atom+xml"),
        "rdf-8859-6": (rdf(items, "iso-8859-6"), "application/rdf+xml"),
    }[shape]
    parsed = parse_feed(body, ctype, f"{server_url}/feed")
    assert parsed.error is None
    assert [i.title for i in parsed.items] == [a["title"] for a in arts]  # oldest first
    assert [i.content for i in parsed.items] == [first_sentence(a["text"]) for a in arts]
    assert all(i.published and i.published.startswith("2017-11-01T") for i in parsed.items)


def test_item_identity_prefers_guid_then_link_then_content():
    def rss(item: str) -> bytes:
        return f'<rss version="2.0"><channel><title>t</title>{item}</channel></rss>'.encode()

    with_guid = parse_feed(rss('<item><title>أ</title><guid isPermaLink="false">id-1</guid>'
                               "<link>http://a/1</link></item>"), None, "http://a/").items[0]
    permalink = parse_feed(rss("<item><title>أ</title><guid>http://a/p/1</guid></item>"),
                           None, "http://a/").items[0]
    assert permalink.identity == "guid:http://a/p/1" and permalink.link == "http://a/p/1"
    with_link = parse_feed(rss("<item><title>أ</title><link>http://a/1</link></item>"),
                           None, "http://a/").items[0]
    bare = parse_feed(rss("<item><title>أ</title><description>نص</description></item>"),
                      None, "http://a/").items[0]
    assert with_guid.identity == "guid:id-1"
    assert with_link.identity == "link:http://a/1"
    assert bare.identity.startswith("hash:") and bare.link is None
    again = parse_feed(rss("<item><title>أ</title><description>نص</description></item>"),
                       None, "http://a/").items[0]
    assert again.key == bare.key
    assert document_id("f", with_guid.identity) != document_id("g", with_guid.identity)


@pytest.mark.parametrize("body", [
    b"", b"\x00\xff\xfe garbage", b"<html><body><p>not a feed</p></body></html>",
    b"<rss><channel><item><title>" + b"<b>" * 5000, b"<?xml version='1.0'?><!DOCTYPE x ["
    b"<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
    b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><rss><channel><item><title>&c;</title>"
    b"</item></channel></rss>",
    b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
    b"<rss version='2.0'><channel><item><title>&x;</title><guid>1</guid></item></channel></rss>",
    "/etc/passwd".encode(),
])
def test_hostile_or_broken_feeds_never_raise(body):
    parsed = parse_feed(body, "application/rss+xml", "http://a/")
    assert all("root:" not in (i.title or "") + i.content for i in parsed.items)
    assert parsed.error or parsed.items is not None


@pytest.mark.parametrize("reference", ["&#xD800;", "&#xDFFF;", "&#1114112;", "&#99999999999;"])
def test_one_impossible_character_reference_costs_nothing_but_itself(reference):
    items = "".join(f"<item><title>خبر {n}</title><guid>g{n}</guid><description>نص {n}"
                    f"</description></item>" for n in range(3))
    bad = f"<item><title>خبر {reference} مكسور</title><guid>g3</guid><description>نص</description></item>"
    body = f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>{items}{bad}" \
           "</channel></rss>"
    parsed = parse_feed(body.encode(), "application/rss+xml", "http://a/")
    assert len(parsed.items) == 4 and any("\ufffd" in i.title for i in parsed.items)


# State


def test_seen_items_survive_restarts_and_stay_bounded(tmp_path):
    path = tmp_path / "feeds.sqlite3"
    with FeedStore(path) as store:
        store.ensure("f", "http://a/rss", "5m", True)
        assert store.unseen("f", ["k1", "k2"], 1.0) == {"k1", "k2"}
        for key in ("k1", "k2"):
            store.mark_seen("f", key, 1.0)
        for n in range(200):
            store.mark_seen("f", f"old{n}", 0.5, skipped="empty")
    with FeedStore(path) as store:
        assert store.unseen("f", ["k1", "k2", "k3"], 2.0) == {"k3"}  # k1, k2 touched at 2.0
        assert store.prune("f", keep=100) == 102
        assert store.unseen("f", ["k1", "k2"], 3.0) == set()  # still listed: never forgotten
        state = store.get("f")
        assert state and state.items_seen == 202 and state.items_emitted == 2
        assert state.last_skip == "empty"


def test_a_state_file_from_before_skip_reasons_opens_and_keeps_its_feeds(tmp_path):
    import sqlite3

    path = tmp_path / "feeds.sqlite3"
    with FeedStore(path) as store:
        store.ensure("f", "http://a/rss", "5m", True)
        store.mark_seen("f", "k1", 1.0)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE feeds DROP COLUMN last_skip")
    db.commit()
    db.close()
    with FeedStore(path) as store:
        store.mark_seen("f", "k2", 2.0, skipped="non_arabic")
        state = store.get("f")
        assert state and (state.items_seen, state.items_emitted, state.last_skip) == (
            2, 1, "non_arabic")


# Scheduling


def test_scheduler_intervals_backoff_retry_after_and_imported_feeds(shared_data, tmp_path):
    arts = corpus_articles(2)
    with FeedServer() as server:
        items = [{"title": a["title"], "link": server.url(f"/a/{n}"), "guid": f"g{n}",
                  "description": first_sentence(a["text"]), "i": n} for n, a in enumerate(arts)]
        for n, article in enumerate(arts):
            server.static(f"/a/{n}", article_html(article), "text/html; charset=utf-8")
        server.static("/ok.xml", rss2(items, "utf-8"), "application/rss+xml", etag='"e"')
        server.static("/late.xml", rss2(items[:1], "utf-8"), "application/rss+xml")
        server.status("/fail.xml", 500)
        server.status("/busy.xml", 429, {"Retry-After": "120"})
        config_path = tmp_path / "marsad.toml"
        feeds = "".join(f'[[feeds]]\nname = "sched-{n}"\nurl = "{server.url(f"/{n}.xml")}"\n'
                        f'interval = "0.3s"\n' for n in ("ok", "fail", "busy"))
        config_path.write_text(f'''
[service]
data_dir = "{tmp_path / 'data'}"
[ingest]
allow_hosts = ["127.0.0.1:{server.port}"]
host_delay = "0"
{feeds}''', encoding="utf-8")
        config = load_config(config_path, env={})
        sent: list[Document] = []

        async def send(docs: list[Document]) -> None:
            sent.extend(docs)

        async def scenario(store: FeedStore) -> float:
            async with Poller(config, send, store, rng=random.Random(7), refresh=0.2) as poller:
                task = asyncio.create_task(poller.run())
                await asyncio.sleep(0.5)
                # An OPML import while the service runs is picked up without a restart.
                store.ensure("sched-late", server.url("/late.xml"), "1h", True, origin="opml")
                await asyncio.sleep(1.6)
                stopping = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return time.monotonic() - stopping

        with FeedStore(state_path(config.service.data_dir)) as store:
            stop_time = asyncio.run(scenario(store))
            fail = store.get("sched-fail")
        assert stop_time < 1
        assert server.hits["/ok.xml"] >= 5  # every 0.3 s, 304 after the first
        assert fetches("sched-ok", "not_modified") >= 4
        assert 2 <= server.hits["/fail.xml"] <= 4  # 0.3, 0.6, 1.2 s apart: backing off
        assert fail and fail.failures == server.hits["/fail.xml"]
        assert server.hits["/busy.xml"] == 1  # Retry-After: 120
        assert server.hits["/late.xml"] == 1
        assert sorted(d.title for d in sent) == sorted([a["title"] for a in arts]
                                                       + [arts[0]["title"]])


# Command line


def test_feeds_import_list_and_remove(shared_data, tmp_path, capsys):
    config_path = tmp_path / "marsad.toml"
    config_path.write_text(f'''
[service]
data_dir = "{tmp_path / 'data'}"

[[feeds]]
name = "configured"
url = "https://configured.example/rss"
''', encoding="utf-8")
    opml = tmp_path / "list.opml"
    opml.write_text('''<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>أخبار</title></head><body>
<outline text="سوريا">
  <outline type="rss" text="عنب بلدي" xmlUrl="https://www.enabbaladi.net/feed"/>
  <outline type="rss" text="عنب بلدي" xmlUrl="https://www.enabbaladi.net/feed/atom"/>
</outline>
<outline type="rss" title="Token feed" xmlUrl="https://user:pw@x.example/rss?token=SECRET"/>
<outline type="rss" text="dup of config" xmlUrl="https://configured.example/rss"/>
<outline type="rss" text="ftp" xmlUrl="ftp://files.example/feed"/>
</body></opml>''', encoding="utf-8")
    args = ["--config", str(config_path)]
    assert marsad_main(["feeds", "import", str(opml), "--interval", "15m", *args]) == 0
    err = capsys.readouterr().err
    assert "imported 3 feeds" in err and "skipped 2" in err and "SECRET" not in err
    assert "dup of config: already present as 'configured' (in the config file" in err
    assert marsad_main(["feeds", "import", str(opml), *args]) == 0  # again: all present
    assert "imported 0 feeds" in capsys.readouterr().err
    # Again with another interval: the imported feeds take it, the configured one does not.
    assert marsad_main(["feeds", "import", str(opml), "--interval", "30m", *args]) == 0
    assert "set the interval of 3 to 30m" in capsys.readouterr().err

    assert marsad_main(["feeds", "list", "--json", *args]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["origin"], r["interval"]) for r in rows] == [
        ("configured", "config", "5m"), ("Token feed", "opml", "30m"),
        ("عنب بلدي", "opml", "30m"), ("عنب بلدي (2)", "opml", "30m")]
    assert rows[1]["url"] == "https://x.example/rss?token=***"
    assert all(r["last_success"] is None and r["items_seen"] == 0 for r in rows)

    assert marsad_main(["feeds", "list", *args]) == 0
    table = capsys.readouterr().out
    assert "LAST SUCCESS" in table and "SKIPPED" in table and "never" in table
    # A feed that failed and then worked again says so, instead of looking broken.
    with FeedStore(state_path(tmp_path / "data")) as store:
        now = time.time()
        store.record_failure("Token feed", now - 120, "timeout", now - 60)
        store.record_success("Token feed", now - 30, now + 600, None, None, False)
    assert marsad_main(["feeds", "list", *args]) == 0
    token_row = next(line for line in capsys.readouterr().out.splitlines() if "Token feed" in line)
    assert "recovered; 2m ago: timeout" in token_row

    assert marsad_main(["feeds", "remove", "عنب بلدي (2)", *args]) == 0
    assert marsad_main(["feeds", "remove", "configured", *args]) == 2
    assert marsad_main(["feeds", "remove", "nope", *args]) == 1
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline", encoding="utf-8")
    assert marsad_main(["feeds", "import", str(bad), *args]) == 2
    assert "not valid XML" in capsys.readouterr().err
    with FeedStore(state_path(tmp_path / "data")) as store:
        assert [s.name for s in store.imported()] == ["Token feed", "عنب بلدي"]


# The service, end to end through a real broker


def consume_raw(bootstrap: str, topic: str) -> list[dict]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=2000)
    try:
        return [json.loads(record.value) for record in consumer]
    finally:
        consumer.close()


def running(service: Service) -> bool:
    """Stops a wait early when the service has exited; the test then reports its stderr."""
    assert service.proc is not None
    if service.proc.poll() is not None:
        assert service.proc.stderr is not None
        raise AssertionError(f"marsad run exited early: {service.proc.stderr.read()[-3000:]}")
    return True


def polled_again_after(service: Service, site: Site, tmp_path: Path, since: float) -> None:
    """Waits until every good feed (its XML intact) has been polled successfully after
    ``since``."""
    with FeedStore(state_path(tmp_path / "data")) as store:
        wait_for(lambda: running(service) and all(
            (state := store.get(feed)) and (state.last_success or 0) > since
            for feed in site.good if not feed.endswith("broken")), timeout=60, interval=0.2)


@pytest.mark.broker
def test_service_polls_feeds_into_alerts_and_restarts_without_repeats(site, tmp_path, broker):
    claim_page = article_html({"title": "غارات روسية على البوكمال",
                               "text": f"{CLAIM}\nوقال مصدر محلي إن القصف استمر حتى المساء."})
    site.server.static("/a/claim.html", claim_page, "text/html; charset=utf-8")
    site.server.static("/claims.xml", rss2([{
        "title": "غارات روسية على البوكمال", "link": site.server.url("/a/claim.html"),
        "guid": "claim-1", "description": CLAIM, "i": 30}], "utf-8"), "application/rss+xml")
    site.paths["claims"] = "/claims.xml"
    site.good[site.feed_name("claims")] = [Expected(
        "غارات روسية على البوكمال", f"{CLAIM}\nوقال مصدر محلي إن القصف استمر حتى المساء.",
        "article")]
    alerts_file = tmp_path / "alerts.jsonl"
    config = tmp_path / "marsad.toml"
    config.write_text(f'''
[broker]
url = "kafka://{broker.bootstrap}"
topic_prefix = "t"  # faust keeps <prefix>-data in the cwd; shared with test_stream
single_record_batches = true
session_timeout = "6s"

[sinks]
jsonl = "{alerts_file}"
console = false

[metrics]
port = 0
''' + site.config_text(tmp_path / "data", interval="2s"), encoding="utf-8")
    expected = sum(len(items) for items in site.good.values())

    service = Service(config, ROOT).start()
    try:
        alert = wait_for(lambda: running(service) and read_jsonl(alerts_file), timeout=60)[0]
        docs = wait_for(lambda: (d := consume_raw(broker.bootstrap, "t.raw"))
                        and len(d) >= expected and d, timeout=30)
        polled_again_after(service, site, tmp_path, time.time())  # still nothing new
    finally:
        code = service.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in service.stderr, service.stderr[-3000:]
    assert alert["town"]["name_ar"] == "البوكمال"
    assert alert["doc"]["source"] == site.feed_name("claims")
    assert alert["doc"]["url"] == site.server.url("/a/claim.html")
    first_run = consume_raw(broker.bootstrap, "t.raw")
    check_documents(site, [Document.from_dict(d) for d in first_run])
    assert len(first_run) == len(docs) >= expected

    # Restart: the feeds are polled again (interval 2 s) and nothing is sent twice.
    started = time.time()
    service = Service(config, ROOT).start()
    try:
        polled_again_after(service, site, tmp_path, started)
    finally:
        code = service.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in service.stderr, service.stderr[-3000:]
    assert len(consume_raw(broker.bootstrap, "t.raw")) == len(first_run)


def test_a_restart_polls_a_feed_refused_by_the_address_policy_at_once():
    # The operator fixes [ingest] allow_hosts and restarts: waiting out the backoff of the
    # refusals would hide the fix for hours. Other failures keep their backoff.

    now = time.time()
    refused = FeedState("f", "http://10.0.0.5/rss", "5m", last_error="refused: 10.0.0.5 is private",
                        last_error_at=now - 60, failures=3, next_poll=now + 3600)
    assert first_poll(refused, now + 1) == now + 1
    timeout = FeedState("f", "http://a.example/rss", "5m", last_error="timeout: read",
                        last_error_at=now - 60, failures=3, next_poll=now + 3600)
    assert first_poll(timeout, now + 1) == now + 3600
    recovered = FeedState("f", "http://a.example/rss", "5m", last_error="refused: x",
                          last_error_at=now - 600, last_success=now - 60, next_poll=now + 240)
    assert first_poll(recovered, now + 1) == now + 240
