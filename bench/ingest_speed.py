"""How many feed items per second the poller sustains, and its peak memory.

A child process serves ``--feeds`` RSS feeds of ``--items`` items each, with an HTML article
page per item, built from the shared Jawhara FM corpus (real Arabic text, windows-1256 and UTF-8
feeds alternating). This process polls them all once with the real poller (robots.txt, host
gate, conditional GET, article fetch and trafilatura extraction, seen-items store) and counts
documents handed to ``send``; a second pass measures the steady state, where every item is
already seen.

    python bench/ingest_speed.py [--feeds 20] [--items 50] [--per-host 8] [--no-articles]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.poller import Poller  # noqa: E402
from ingest.state import FeedStore, active_feeds, state_path  # noqa: E402
from marsad.config import Config, FeedConfig, IngestConfig, ServiceConfig  # noqa: E402
from marsad.records import Document  # noqa: E402
from tests.feed_server import (  # noqa: E402
    CORPUS, FeedServer, article_html, corpus_articles, first_sentence, rss2,
)


def serve(feeds: int, items: int, conn: Connection) -> None:
    """The child: builds every feed and page, reports its port, serves until told to stop."""
    articles = corpus_articles(feeds * items)
    server = FeedServer().start()
    for f in range(feeds):
        chunk = articles[f * items:(f + 1) * items]
        entries = [{"title": a["title"], "link": server.url(f"/a/{f}/{n}.html"),
                    "guid": a["id"], "description": first_sentence(a["text"]), "i": n}
                   for n, a in enumerate(chunk)]
        encoding = "windows-1256" if f % 2 else "utf-8"
        server.static(f"/feed/{f}.xml", rss2(entries, encoding), "application/rss+xml",
                      etag=f'"feed-{f}"')
        for n, article in enumerate(chunk):
            server.static(f"/a/{f}/{n}.html", article_html(article), "text/html; charset=utf-8")
    conn.send(server.port)
    conn.recv()
    server.stop()


async def poll_once(config: Config, store: FeedStore, sent: Counter[str]) -> float:
    """Counts documents rather than keeping them, so peak memory is the poller's own."""
    async def send(docs: list[Document]) -> None:
        sent["documents"] += len(docs)
        sent["complete"] += sum(1 for d in docs if d.title and d.text and d.published)

    started = time.perf_counter()
    async with Poller(config, send, store) as poller:
        await asyncio.gather(*(poller.poll(feed) for feed in active_feeds(config, store)))
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=50, help="items per feed")
    parser.add_argument("--per-host", type=int, default=8,
                        help="[ingest] per_host_concurrency (all feeds share one host here)")
    parser.add_argument("--no-articles", action="store_true",
                        help="use the feeds' own text, do not fetch article pages")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"needs the shared corpus at {CORPUS}", file=sys.stderr)
        return 2

    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(args.feeds, args.items, theirs))
    child.start()
    try:
        port = ours.recv()
        with tempfile.TemporaryDirectory() as data_dir:
            config = Config(
                feeds=[FeedConfig(f"bench-{f}", f"http://127.0.0.1:{port}/feed/{f}.xml")
                       for f in range(args.feeds)],
                ingest=IngestConfig(allow_hosts=[f"127.0.0.1:{port}"], host_delay="0",
                                    per_host_concurrency=args.per_host,
                                    fetch_articles=not args.no_articles),
                service=ServiceConfig(data_dir=data_dir)).validate()
            baseline = peak_rss_mb()
            sent: Counter[str] = Counter()
            with FeedStore(state_path(data_dir)) as store:
                cold = asyncio.run(poll_once(config, store, sent))
                emitted = sent["documents"]
                warm = asyncio.run(poll_once(config, store, sent))
            total = args.feeds * args.items
            print(f"feeds {args.feeds} x {args.items} items, articles "
                  f"{'off' if args.no_articles else 'fetched and extracted'}, "
                  f"per-host concurrency {args.per_host}")
            print(f"first pass:  {emitted}/{total} documents in {cold:.2f}s = "
                  f"{emitted / cold:.0f} items/s")
            print(f"second pass: {sent['documents'] - emitted} new, {args.feeds} feeds answered "
                  f"304 in {warm:.2f}s")
            print(f"peak RSS {peak_rss_mb():.0f} MB (after imports {baseline:.0f} MB); "
                  f"{sent['complete']} documents with title, text and date")
            return 0 if emitted == total else 1
    finally:
        ours.send("stop")
        child.join(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
