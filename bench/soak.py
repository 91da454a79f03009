"""Soak test: does a worker's memory level off while its windows roll over, as it must for a
service that runs for months?

    python bench/soak.py [--minutes 20] [--rate 40] [--step 10m] [--corpus PATH]

Starts a private embedded broker and one ``marsad run`` worker (every stage, as ``marsad bench``
does) and sends corpus articles at ``--rate`` per second for ``--minutes``, every 20th one a seed
article about a monitored town so that claims, novelty and alerts run too. Each document is
published ``--step`` after the previous one, so a 20-minute run covers most of a year of news:
deduplication's 7-day and novelty's 14-day windows turn over many times, and the corpus, sent
again with new ids once it runs out, is news again by then.

Every 30 s it prints the worker's resident memory, what the stages remember and the consumer
lag; at the end, the memory growth over the second half of the run per 10,000 documents. A
worker whose state is bounded levels off: growth near zero. The embedded broker keeps every
topic in memory by design, so its memory grows with the documents sent and is shown apart.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kafka import KafkaProducer

from ingest.documents import ReadReport, read_documents
from marsad import REPO_ROOT
from marsad.bench import (DEFAULT_CORPUS, PARTITIONS, PREFIX, SEED_TOWN, TOWNS, BenchError,
                          memory_mb, scrape, start_workers, tail, total, wait_assigned,
                          write_config)
from marsad.broker import EmbeddedBroker, Topics, ensure_topics
from marsad.config import ConfigError, parse_duration
from marsad.records import Document, dumps
from marsad.stream import STAGES

SAMPLE_EVERY = 30.0
CLAIM_EVERY = 20


def rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmRSS")


def documents(corpus: Path, start: datetime, step: timedelta) -> Iterator[Document]:
    """Corpus articles for ever, each pass under new ids, every CLAIM_EVERY-th a seed article
    moved to a monitored town; published one ``step`` apart from ``start``."""
    seeds = list(read_documents([REPO_ROOT / "seeds"]))
    # Empty corpus lines are the corpus's business, not the soak's: skip them quietly.
    logging.getLogger("ingest.documents").setLevel(logging.ERROR)
    articles = list(read_documents([corpus], ReadReport()))
    if not articles:
        raise BenchError(f"corpus {corpus} holds no readable documents")
    n = 0
    while True:
        for doc in articles:
            published = (start + n * step).isoformat()
            if n % CLAIM_EVERY == CLAIM_EVERY - 1:
                seed, town = seeds[n % len(seeds)], TOWNS[n // CLAIM_EVERY % len(TOWNS)]
                doc = replace(seed, text=SEED_TOWN.sub(town, seed.text),
                              title=SEED_TOWN.sub(town, seed.title or ""), source="soak")
            yield replace(doc, id=f"soak-{n}", published=published)
            n += 1


def growth_per_10k(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of memory (MB) over documents, per 10,000 documents."""
    if len(samples) < 2 or len({d for d, _ in samples}) < 2:
        return float("nan")
    return statistics.linear_regression([d for d, _ in samples],
                                        [m for _, m in samples]).slope * 10_000


def run(minutes: float, rate: float, step: timedelta, corpus: Path) -> int:
    if not corpus.is_file():
        raise BenchError(f"corpus {corpus} not found; pass --corpus PATH")
    total_docs = int(minutes * 60 * rate)
    # Published times stay in the past, so none is taken for a misdated article.
    start = datetime.now(timezone.utc) - step * total_docs - timedelta(days=1)
    folder = Path(tempfile.mkdtemp(prefix="marsad-soak-"))
    broker = EmbeddedBroker().start()
    workers = []
    try:
        topics = Topics(PREFIX, PARTITIONS)
        ensure_topics(broker.bootstrap, topics)
        workers = start_workers([",".join(STAGES)], write_config(folder, broker.bootstrap), folder)
        wait_assigned(workers)
        worker = workers[0]
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=5,
                                 client_id="marsad-soak")
        print(f"soak: {minutes:g} min at {rate:g} documents/s, published {step} apart "
              f"({step * total_docs} of news)", file=sys.stderr)
        print(f"{'min':>5} {'sent':>7} {'deduped':>7} {'rss MB':>7} {'broker MB':>9} "
              f"{'remembered':>10} {'claims kept':>11} {'lag':>5} {'alerts':>6}")
        stream = documents(corpus, start, step)
        began = time.monotonic()
        next_sample = began + SAMPLE_EVERY
        samples: list[tuple[float, float]] = []
        sent = 0
        while sent < total_docs:
            due = began + sent / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            doc = next(stream)
            producer.send(topics.raw, key=doc.id.encode(),
                          value=dumps(replace(doc, ingested_at=time.time())))
            sent += 1
            if time.monotonic() >= next_sample or sent == total_docs:
                next_sample += SAMPLE_EVERY
                producer.flush()
                now = scrape(workers)
                done = total(now, "marsad_stage_documents_in_total", stage="dedup")
                memory = rss_mb(worker.proc.pid)
                samples.append((done, memory))
                print(f"{(time.monotonic() - began) / 60:5.1f} {sent:7d} {done:7.0f} "
                      f"{memory:7.0f} {rss_mb(broker.pid or 0):9.0f} "
                      f"{total(now, 'marsad_dedup_documents_remembered'):10.0f} "
                      f"{total(now, 'marsad_novelty_claims_remembered'):11.0f} "
                      f"{total(now, 'marsad_consumer_lag_messages'):5.0f} "
                      f"{total(now, 'marsad_alerts_total'):6.0f}", flush=True)
        producer.close()
        growth = growth_per_10k(samples[len(samples) // 2:])
        print(f"\nworker memory: {samples[0][1]:.0f} MB after {samples[0][0]:.0f} documents, "
              f"{samples[-1][1]:.0f} MB after {samples[-1][0]:.0f}; second half of the run: "
              + ("too short to tell" if math.isnan(growth)
                 else f"{growth:+.1f} MB per 10,000 documents"))
        return 0
    finally:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
            try:
                worker.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a worker that will not stop is killed
                worker.proc.kill()
            if worker.proc.returncode not in (0, -signal.SIGTERM, None):
                print(f"worker exited with {worker.proc.returncode}:\n{tail(worker.log)}",
                      file=sys.stderr)
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=40.0, help="documents per second")
    parser.add_argument("--step", default="10m", help="published time between documents")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    try:
        if args.minutes <= 0 or args.rate <= 0:
            raise BenchError("--minutes and --rate must be positive")
        return run(args.minutes, args.rate, timedelta(seconds=parse_duration(args.step, "--step")),
                   args.corpus)
    except (BenchError, ConfigError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
