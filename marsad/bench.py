"""`marsad bench`: throughput and latency of the real topology, end to end through a broker.

The bench starts a private embedded broker and worker processes, ``marsad run --role ...`` in
one consumer group: the processes a deployment runs, so the numbers include Kafka hops, faust,
serialisation and the consumer group. One worker runs every stage; two workers are laid out as
docker-compose.yml does, deduplication in one process and claims, novelty and sinks in the other
(deduplication must see every document in order, so a second worker can only take the rest;
sharing the event loop with tagging slows deduplication, which bounds the whole pipeline).
This process produces the documents to the raw topic and consumes the alert topic:

- documents per second: measured documents over the time from the first send until the last
  stage finished its last record (``marsad_stage_last_processed_timestamp_seconds``);
- time per stage: ``marsad_stage_latency_seconds`` sum / count over the measured records;
- ingest-to-alert latency: from sending a document to reading its alert off the alert topic;
- peak memory: the high-water resident set of each worker and of the broker.

The corpus (Tunisian news) rarely names a town the gazetteer covers, so a known share of the
documents are synthetic claim documents: a seed article with its town replaced by one of the
monitored towns, dated 15 days after the previous one so that neither deduplication (7 days)
nor novelty (14 days) recognises it. Latency is measured on the alerts they and the corpus raise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ingest.documents import ReadReport, read_documents
from marsad import REPO_ROOT
from marsad.broker import EmbeddedBroker, Topics, ensure_topics, free_port
from marsad.config import ConfigError
from marsad.records import Document, dumps
from marsad.service import parse_roles
from marsad.stream import STAGES

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"
# Towns the gazetteer knows that the corpus mentions now and then, plus the seeds' own town.
TOWNS = ("البوكمال", "دمشق", "حلب", "بغداد", "الموصل", "الرقة", "حمص", "تدمر")
SEED_TOWN = re.compile("البوكمال|البو كمال|أبو كمال")
SYNTHETIC_START = datetime(2000, 1, 1, tzinfo=timezone.utc)
SYNTHETIC_SPACING = timedelta(days=15)  # beyond both the dedup and the novelty window
PREFIX = "bench"
PARTITIONS = 4
STALL_TIMEOUT = 120.0
LAYOUTS = {1: [",".join(STAGES)], 2: ["dedup", "claims,novelty,sinks"]}


class BenchError(RuntimeError):
    """The bench cannot run or a worker failed; the message says why."""


@dataclass
class Result:
    layout: list[str]
    documents: int
    synthetic: int
    seconds: float
    stage_seconds: dict[str, float]
    stage_records: dict[str, float]
    latencies: list[float]
    alerts: int
    duplicates: int
    peak_rss_mb: list[float]
    broker_rss_mb: float

    @property
    def workers(self) -> int:
        return len(self.layout)

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    def stage_ms(self) -> dict[str, float]:
        return {s: (self.stage_seconds[s] / self.stage_records[s] * 1000
                    if self.stage_records[s] else 0.0) for s in STAGES}

    def latency_ms(self) -> dict[str, float]:
        return {"count": len(self.latencies),
                **{f"p{q}": percentile(self.latencies, q) * 1000 for q in (50, 95, 99)}}

    def to_dict(self) -> dict[str, Any]:
        return {"workers": self.workers, "layout": self.layout, "documents": self.documents,
                "synthetic": self.synthetic, "seconds": round(self.seconds, 3),
                "docs_per_second": round(self.docs_per_second, 2),
                "stage_ms": {s: round(v, 2) for s, v in self.stage_ms().items()},
                "alerts": self.alerts, "duplicates": self.duplicates,
                # No alerts (--synthetic 0 on a corpus without monitored towns): no percentiles.
                "latency_ms": {k: None if math.isnan(v) else round(v, 1)
                               for k, v in self.latency_ms().items()},
                "peak_rss_mb": {"workers": [round(m) for m in self.peak_rss_mb],
                                "broker": round(self.broker_rss_mb)}}


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


@dataclass
class AlertClock:
    """Reads the alert topic in a thread and notes when each document's alerts arrive."""

    bootstrap: str
    topic: str
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> AlertClock:
        self._thread = threading.Thread(target=self._run, name="bench-alerts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 client_id="marsad-bench-alerts", fetch_max_wait_ms=20)
        try:
            parts = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            while not self.stop.is_set():
                for records in consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    for record in records:
                        self.arrivals[json.loads(record.value)["doc"]["id"]].append(now)
        finally:
            consumer.close()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=10)


def load_documents(corpus: Path, count: int, synthetic_share: float) -> tuple[list[Document], int]:
    """``count`` documents: corpus articles in order, every k-th one a synthetic claim document."""
    if not corpus.is_file():
        problem = "is a folder, not a JSONL file" if corpus.is_dir() else "not found"
        raise BenchError(f"corpus {corpus} {problem}; pass --corpus PATH (JSONL documents, "
                         "optionally .gz), or put the shared data folder next to the project")
    seeds = list(read_documents([REPO_ROOT / "seeds"]))
    every = round(1 / synthetic_share) if synthetic_share > 0 else 0
    docs: list[Document] = []
    synthetic = 0
    # Empty corpus lines are the corpus's business, not the bench's: skip them quietly.
    logging.getLogger("ingest.documents").setLevel(logging.ERROR)
    corpus_docs = read_documents([corpus], ReadReport())
    while len(docs) < count:
        if every and len(docs) % every == every - 1:
            docs.append(synthetic_document(seeds, synthetic))
            synthetic += 1
            continue
        doc = next(corpus_docs, None)
        if doc is None:
            break
        docs.append(doc)
    if not docs:
        raise BenchError(f"corpus {corpus} holds no readable documents")
    return docs, synthetic


def synthetic_document(seeds: list[Document], k: int) -> Document:
    seed = seeds[k % len(seeds)]
    town = TOWNS[k % len(TOWNS)]
    published = SYNTHETIC_START + k * SYNTHETIC_SPACING
    return Document(text=SEED_TOWN.sub(town, seed.text), id=f"bench-synthetic-{k}",
                    title=SEED_TOWN.sub(town, seed.title or ""), source="marsad bench",
                    published=published.isoformat())


def write_config(folder: Path, bootstrap: str) -> Path:
    towns = "\n".join(f'[[towns]]\nname = "{town}"\n' for town in TOWNS)
    config = folder / "bench.toml"
    config.write_text(f'''[broker]
url = "kafka://{bootstrap}"
topic_prefix = "{PREFIX}"
partitions = {PARTITIONS}
session_timeout = "6s"
single_record_batches = true

{towns}
[sinks]
console = false

[metrics]
host = "127.0.0.1"

[log]
level = "error"
''', encoding="utf-8")
    return config


def start_workers(layout: list[str], config: Path, folder: Path) -> list[Worker]:
    """One `marsad run --role ROLES` process per entry of ``layout``."""
    workers = []
    for i, roles in enumerate(layout):
        port = free_port()
        data = folder / f"worker-{i + 1}"
        data.mkdir()
        env = dict(os.environ, MARSAD_METRICS_PORT=str(port), MARSAD_SERVICE_DATA_DIR=str(data),
                   MARSAD_SINKS_JSONL=str(data / "alerts.jsonl"))
        log = data / "stderr.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "marsad.cli", "run", "--role", roles,
                 "--config", str(config)],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=folder)
        workers.append(Worker(proc, port, log))
    return workers


def scrape(workers: list[Worker]) -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Every worker's samples, by (name, sorted labels)."""
    out: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []
    for worker in workers:
        if worker.proc.poll() is not None:
            raise BenchError(f"a worker exited with code {worker.proc.returncode}:\n"
                             + tail(worker.log))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
        except OSError:
            out.append({})  # not serving yet
            continue
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        out.append(samples)
    return out


def total(scrapes: list[dict], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for samples in scrapes for (n, have), value in samples.items()
               if n == name and wanted <= set(have))


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def wait_assigned(workers: list[Worker], timeout: float = 180.0) -> None:
    """Until the workers' lag gauges cover every source partition exactly once: the group has
    settled, so no rebalance falls into the measurement."""
    expected = {(f"{PREFIX}.raw", "0")} | {
        (f"{PREFIX}.{topic}", str(p)) for topic in ("unique", "claims", "alerts")
        for p in range(PARTITIONS)}
    deadline = time.monotonic() + timeout
    settled = 0
    while time.monotonic() < deadline:
        owned = [{(dict(labels)["topic"], dict(labels)["partition"])
                  for name, labels in samples if name == "marsad_consumer_lag_messages"}
                 for samples in scrape(workers)]
        together = [tp for mine in owned for tp in mine]
        settled = settled + 1 if len(together) == len(expected) and set(together) == expected \
            and all(owned) else 0
        if settled >= 2:
            return
        time.sleep(1.0)
    raise BenchError(f"the workers did not share the partitions within {timeout:.0f}s")


def drained(now: list[dict], base: list[dict], sent: int) -> bool:
    def delta(name: str, **labels: str) -> float:
        return total(now, name, **labels) - total(base, name, **labels)

    return (delta("marsad_stage_documents_in_total", stage="dedup") >= sent
            and delta("marsad_stage_documents_in_total", stage="claims")
            == delta("marsad_stage_documents_out_total", stage="dedup")
            and delta("marsad_stage_documents_in_total", stage="novelty")
            == delta("marsad_claims_total")
            and delta("marsad_stage_documents_in_total", stage="sinks")
            == delta("marsad_stage_documents_out_total", stage="novelty"))


def wait_drained(workers: list[Worker], base: list[dict], sent: int) -> list[dict]:
    last, changed = None, time.monotonic()
    while True:
        now = scrape(workers)
        if drained(now, base, sent):
            return now
        progress = total(now, "marsad_stage_documents_in_total")
        if progress != last:
            last, changed = progress, time.monotonic()
        elif time.monotonic() - changed > STALL_TIMEOUT:
            raise BenchError(f"no progress for {STALL_TIMEOUT:.0f}s; worker logs:\n"
                             + "\n".join(tail(w.log) for w in workers))
        # Rendering /metrics costs the workers CPU; the end time comes from their gauges, so a
        # coarse poll loses no accuracy.
        time.sleep(0.5)


def send(producer: KafkaProducer, topic: str, docs: list[Document],
         rate: float | None) -> dict[str, float]:
    """Sends ``docs`` (at ``rate`` per second, or as fast as the producer goes); returns when
    each was sent, which is also its ingested_at."""
    sent: dict[str, float] = {}
    started = time.monotonic()
    for i, doc in enumerate(docs):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        now = time.time()
        producer.send(topic, key=doc.id.encode(), value=dumps(replace(doc, ingested_at=now)))
        if rate:
            producer.flush()
        sent[doc.id] = now
    producer.flush()
    return sent


def peak_rss_mb(pid: int) -> float:
    return memory_mb(pid, "VmHWM")


def memory_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/PID/status in MB (VmRSS now, VmHWM the peak); 0 when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def run_once(layout: list[str], docs: list[Document], synthetic: int, rate: float | None,
             progress: bool) -> Result:
    folder = Path(tempfile.mkdtemp(prefix="marsad-bench-"))
    broker = EmbeddedBroker().start()
    workers: list[Worker] = []
    clock = None
    try:
        topics = Topics(PREFIX, PARTITIONS)
        ensure_topics(broker.bootstrap, topics)
        workers = start_workers(layout, write_config(folder, broker.bootstrap), folder)
        say(progress, f"{len(layout)} worker(s) starting: " + " | ".join(layout))
        wait_assigned(workers)
        clock = AlertClock(broker.bootstrap, topics.alerts).start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=2,
                                 client_id="marsad-bench")
        # Warm-up: every stage and code path runs once before the clock starts.
        base = scrape(workers)
        seeds = [replace(d, id=f"warmup-{d.id}") for d in read_documents([REPO_ROOT / "seeds"])]
        send(producer, topics.raw, seeds, None)
        base = wait_drained(workers, base, len(seeds))
        say(progress, f"warm, sending {len(docs)} documents"
            + (f" at {rate:g}/s" if rate else ""))
        started = time.time()
        sent = send(producer, topics.raw, docs, rate)
        producer.close()
        end = wait_drained(workers, base, len(docs))
        finished = max(total([s], "marsad_stage_last_processed_timestamp_seconds", stage=stage)
                       for s in end for stage in STAGES)

        def delta(name: str, **labels: str) -> float:
            return total(end, name, **labels) - total(base, name, **labels)

        def measured() -> list[float]:
            return sorted(at - sent[doc_id] for doc_id, ats in list(clock.arrivals.items())
                          if doc_id in sent for at in ats)

        # The alert clock reads the last alerts a moment after novelty produced them.
        deadline = time.monotonic() + 10
        while len(latencies := measured()) < delta("marsad_alerts_total") \
                and time.monotonic() < deadline:
            time.sleep(0.1)

        return Result(
            layout=layout, documents=len(docs), synthetic=synthetic,
            seconds=max(finished - started, 1e-9),
            stage_seconds={s: delta("marsad_stage_latency_seconds_sum", stage=s) for s in STAGES},
            stage_records={s: delta("marsad_stage_latency_seconds_count", stage=s) for s in STAGES},
            latencies=latencies, alerts=int(delta("marsad_alerts_total")),
            duplicates=int(delta("marsad_duplicates_total")),
            peak_rss_mb=[peak_rss_mb(w.proc.pid) for w in workers],
            broker_rss_mb=peak_rss_mb(broker.pid) if broker.pid else 0.0,
        )
    finally:
        if clock is not None:
            clock.close()
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def say(enabled: bool, message: str) -> None:
    if enabled:
        print(f"bench: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    rank = max(1, -(-len(values) * q // 100))
    return values[int(rank) - 1]


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # no /proc (not Linux): the core count alone
    return (f"{os.cpu_count()} cores{' (' + model + ')' if model else ''}, Python "
            f"{platform.python_version()}, {platform.system()} {platform.machine()}")


def report(results: list[Result], rate: float | None, corpus: Path) -> str:
    first = results[0]
    lines = [
        f"marsad bench: {first.documents} documents from {corpus.name} "
        f"({first.synthetic} synthetic claim documents), towns {', '.join(TOWNS)}",
        f"machine: {machine()}",
        "load: " + (f"paced at {rate:g} documents/s" if rate else "as fast as possible (saturated)")
        + "; full pipeline (dedup, tagging, claims, novelty, JSONL sink)",
        "",
        f"{'workers':>7}  {'docs/s':>7}  {'dedup':>8}  {'claims':>8}  {'novelty':>8}  "
        f"{'sinks':>8}  {'alerts':>6}  {'p50':>8}  {'p95':>8}  {'p99':>8}  peak RSS per worker (broker)",
    ]
    for r in results:
        per = r.stage_ms()
        ms = [r.latency_ms()[f"p{q}"] for q in (50, 95, 99)]
        lines.append(
            f"{r.workers:>7}  {r.docs_per_second:>7.1f}  "
            + "  ".join(f"{per[s]:>5.1f} ms" for s in STAGES)
            + f"  {r.alerts:>6}  " + "  ".join(f"{v:>5.0f} ms" for v in ms)
            + "  " + ", ".join(f"{m:.0f} MB" for m in r.peak_rss_mb)
            + f" ({r.broker_rss_mb:.0f} MB)")
    lines += [
        "",
        "stage columns: mean time one record spends in the stage (marsad_stage_latency_seconds); "
        "dedup sees every document, claims every unique one, novelty one record per claim, "
        "sinks one per alert",
        "p50/p95/p99: ingest-to-alert latency, from sending a document to reading its alert off "
        "the alert topic" + ("" if rate else "; without --rate they include the queue of documents "
                             "waiting for the pipeline"),
    ]
    for r in results:
        busy = sum(r.stage_seconds.values())
        lines.append(f"{r.workers} worker(s), roles {' | '.join(r.layout)}: {r.seconds:.1f} s "
                     f"wall, {busy:.1f} s inside stages, {r.duplicates} duplicates dropped")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    if args.docs < 1:
        raise BenchError("--docs: expected at least 1")
    if args.rate is not None and args.rate <= 0:
        raise BenchError("--rate: expected a positive number of documents per second")
    if not 0 <= args.synthetic <= 1:
        raise BenchError("--synthetic: expected a share between 0 and 1")
    if args.layout:
        covered: set[str] = set()
        for roles in args.layout:
            try:
                covered |= parse_roles(roles)
            except ConfigError as exc:
                raise BenchError(f"--layout: {exc}") from exc
        if not covered >= set(STAGES) or "fetch" in covered:
            raise BenchError("--layout: the processes together must run dedup, claims, novelty "
                             "and sinks, and none of them fetch")
    corpus = Path(args.corpus) if args.corpus else DEFAULT_CORPUS
    docs, synthetic = load_documents(corpus, args.docs, args.synthetic)
    results = []
    if args.layout:
        layouts = [args.layout]
    else:
        layouts = [LAYOUTS[args.workers]] if args.workers else [LAYOUTS[1], LAYOUTS[2]]
    for layout in layouts:
        results.append(run_once(layout, docs, synthetic, args.rate,
                                progress=not (args.quiet or args.json)))
    if args.json:
        for result in results:
            print(json.dumps({**result.to_dict(), "rate": args.rate, "machine": machine()}))
    else:
        print(report(results, args.rate, corpus))
    return 0
