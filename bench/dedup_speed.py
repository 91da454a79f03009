"""Throughput and memory of the deduplication stage on the shared corpus (10k real articles).

    python bench/dedup_speed.py [--corpus PATH] [--rounds N]

Prints documents per second on one core (process CPU time, so other work on the machine does not
count; wall-clock too) with the default 7-day window, and the bytes each remembered document
costs: its record in the state table as stored (key and JSON value) and in this process (state
and index, measured with tracemalloc while remembering the whole corpus in one window).
Targets: >= 1,000 documents/s, < 1 KB per remembered document.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from marsad.config import DedupConfig, parse_duration
from marsad.records import Document, RecordError, parse_time
from processors import dedup as dedup_module
from processors.dedup import Deduplicator

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"


def load(path: Path) -> list[Document]:
    """The corpus in published order, as a feed would deliver it. Its unreadable dates (such as
    '0101-20-17') are dropped, so those articles count as undated."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            data = json.loads(line)
            if not data.get("text", "").strip():
                continue
            try:
                parse_time(data.get("published"))
            except RecordError:
                data["published"] = None
            rows.append(data)
    rows.sort(key=lambda data: data["published"] or "")
    return [Document.from_dict(data) for data in rows]


def throughput(docs: list[Document], window: float) -> tuple[float, float, int]:
    dedup = Deduplicator(window)
    state: dict[str, str] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    copies = 0
    for doc in docs:
        result = dedup.check(doc, state)
        dedup.remember(doc, result, state)
        copies += result.duplicate_of is not None
    return time.process_time() - cpu, time.perf_counter() - wall, copies


def memory(docs: list[Document]) -> tuple[float, float, int]:
    """Bytes per remembered document: stored record, and state plus index in this process."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    dedup = Deduplicator(window_seconds=100 * 365 * 86400)  # the whole corpus in one window
    state: dict[str, str] = {}
    for doc in docs:
        dedup.remember(doc, dedup.check(doc, state), state)
    # The word cache is bounded (processors.dedup._word) and shared, not per document.
    dedup_module._word.cache_clear()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    stored = statistics.mean(len(key.encode()) + len(json.dumps(value)) for key, value in state.items())
    return stored, (after - before) / len(state), len(state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=3, help="best of N timed rounds")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"needs the corpus at {args.corpus}", file=sys.stderr)
        return 2
    docs = load(args.corpus)
    window = parse_duration(DedupConfig().window, "dedup.window")
    throughput(docs[:500], window)  # warm caches and imports
    rounds = [throughput(docs, window) for _ in range(args.rounds)]
    cpu, wall, copies = min(rounds)
    print(f"{len(docs)} documents, {copies} copies, window {DedupConfig().window}")
    print(f"throughput: {len(docs) / cpu:,.0f} documents/s on one core (CPU time; "
          f"{len(docs) / wall:,.0f}/s wall-clock), best of {args.rounds}")
    stored, in_process, remembered = memory(docs)
    print(f"memory: {stored:,.0f} bytes stored per remembered document (table key + JSON value), "
          f"{in_process:,.0f} bytes in process (state + index), over {remembered} documents")
    return 0


if __name__ == "__main__":
    sys.exit(main())
