"""Score deduplication on the labelled set (scripts/dedup_variants.py) and the hand-labelled
natural pairs (tests/data/dedup/natural_pairs*.jsonl).

    python scripts/eval_dedup.py [--errors N] [--seed S]

Prints:
- stream: the corpus (minus its natural overlaps) with the generated copies, updates and
  different stories, in published order, through one Deduplicator with the default window:
  precision and recall of "is a copy", and how often a caught copy names its real original;
- pairs: each generated pair on its own (a, then b): the share of copies caught and of updates
  and different stories wrongly flagged, with copies broken down by transformation;
- natural: the same rates on hand-labelled pairs of real corpus articles: a development set, a
  held-out set, and a blind set labelled by readers who never saw the system's output (its
  borderline calls, "sure": false, are scored apart as well).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from dedup_variants import CORPUS, Item, build, load_corpus, natural_overlaps, stream

from marsad.config import DedupConfig, parse_duration
from marsad.records import Document
from processors.dedup import Deduplicator

ROOT = Path(__file__).resolve().parents[1]
# Hand-labelled pairs of corpus articles: the first set was used while developing the rules, the
# second was labelled afterwards and only ever scored, the third (random overlapping pairs within
# four days of each other, no article in two pairs) was labelled blind and only ever scored.
PAIRS = ROOT / "tests" / "data" / "dedup"
NATURAL = {"natural pairs, development": PAIRS / "natural_pairs.jsonl",
           "natural pairs, held out": PAIRS / "natural_pairs_heldout.jsonl",
           "natural pairs, blind": PAIRS / "natural_pairs_blind.jsonl"}
WINDOW = parse_duration(DedupConfig().window, "dedup.window")


def pair_flagged(a: Document, b: Document) -> bool:
    dedup = Deduplicator(WINDOW)
    state: dict[str, str] = {}
    dedup.remember(a, dedup.check(a, state), state)
    return dedup.check(b, state).duplicate_of == a.id


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / total:.1f}%" if total else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", type=int, default=0, help="print up to N errors of each kind")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"needs the shared corpus at {CORPUS}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    docs = load_corpus()
    by_id = {d.id: d for d in docs}
    overlaps = natural_overlaps(docs)
    excluded = {doc_id for a, b, _ in overlaps for doc_id in (a, b)}
    items = build(docs, excluded, seed=args.seed)
    print(f"corpus {len(docs)} articles; {len(excluded)} in natural overlaps left out of the "
          f"background; generated {Counter(i.label for i in items)}")

    # -- stream -------------------------------------------------------------------------------
    gold = {i.doc.id: i.base for i in items if i.label == "copy"}
    label = {i.doc.id: i.label for i in items}
    dedup = Deduplicator(WINDOW)
    state: dict[str, str] = {}
    predicted: dict[str, str | None] = {}
    for doc in stream(docs, excluded, items):
        result = dedup.check(doc, state)
        dedup.remember(doc, result, state)
        predicted[doc.id] = result.duplicate_of
    flagged = {d for d, dup in predicted.items() if dup is not None}
    true_positive = flagged & gold.keys()
    linked = sum(predicted[d] == gold[d] for d in true_positive)
    precision = len(true_positive) / len(flagged) if flagged else 1.0
    recall = len(true_positive) / len(gold)
    print("\nstream (one Deduplicator, window 7d, published order)")
    print(f"  precision {precision:.4f}  recall {recall:.4f}  "
          f"(flagged {len(flagged)}, true copies {len(gold)}, caught {len(true_positive)}, "
          f"linked to their original {linked})")
    by_class = Counter(label.get(d, "background") for d in flagged)
    totals = Counter(label.values())
    totals["background"] = len(predicted) - len(items)
    for name in ("update", "different", "background"):
        print(f"  {name} flagged: {rate(by_class[name], totals[name])}")

    # -- generated pairs ------------------------------------------------------------------------
    print("\npairs (a then b, fresh state each)")
    outcome: dict[str, list[tuple[Item, bool]]] = defaultdict(list)
    for item in items:
        outcome[item.label].append((item, pair_flagged(by_id[item.base], item.doc)))
    for name, verb in (("copy", "caught"), ("update", "flagged"), ("different", "flagged")):
        hits = sum(f for _, f in outcome[name])
        print(f"  {name}: {verb} {rate(hits, len(outcome[name]))}")
    per_change: dict[str, list[bool]] = defaultdict(list)
    for item, hit in outcome["copy"]:
        for change in item.change.split("+"):
            per_change[change].append(hit)
    print("  copies caught by transformation: " + ", ".join(
        f"{c} {100 * sum(v) / len(v):.0f}% ({len(v)})" for c, v in sorted(per_change.items())))
    per_kind: dict[str, list[bool]] = defaultdict(list)
    for item, hit in outcome["update"]:
        per_kind[item.change].append(hit)
    print("  updates flagged by kind: " + ", ".join(
        f"{c} {100 * sum(v) / len(v):.0f}% ({len(v)})" for c, v in sorted(per_kind.items())))

    # -- natural pairs ------------------------------------------------------------------------
    natural_outcome: dict[str, list[tuple[dict, bool]]] = defaultdict(list)
    for title, path in NATURAL.items():
        natural = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        print(f"\n{title} ({len(natural)}, {path.name})")
        outcome_here: dict[str, list[bool]] = defaultdict(list)
        sure_only: dict[str, list[bool]] = defaultdict(list)
        for pair in natural:
            hit = pair_flagged(by_id[pair["a"]], by_id[pair["b"]])
            outcome_here[pair["label"]].append(hit)
            natural_outcome[pair["label"]].append((pair, hit))
            if pair.get("sure", True):
                sure_only[pair["label"]].append(hit)
        for name, verb in (("copy", "caught"), ("update", "flagged"), ("different", "flagged")):
            line = f"  {name}: {verb} {rate(sum(outcome_here[name]), len(outcome_here[name]))}"
            if len(sure_only[name]) < len(outcome_here[name]):
                line += f"; sure labels only {rate(sum(sure_only[name]), len(sure_only[name]))}"
            print(line)
    print("\nnatural pairs, all")
    for name, verb in (("copy", "caught"), ("update", "flagged"), ("different", "flagged")):
        hits = sum(f for _, f in natural_outcome[name])
        print(f"  {name}: {verb} {rate(hits, len(natural_outcome[name]))}")

    if args.errors:
        print("\nerrors")
        missed = [i for i, hit in outcome["copy"] if not hit][: args.errors]
        wrong = [i for name in ("update", "different") for i, hit in outcome[name] if hit]
        for item in missed + wrong[: args.errors]:
            print(f"--- {item.label} ({item.change}) {item.doc.id}\n{item.doc.text[:1500]}\n")
        stream_fp = [d for d in flagged if d not in gold][: args.errors]
        for doc_id in stream_fp:
            print(f"--- stream false positive {doc_id} -> {predicted[doc_id]}")
        for pair, hit in (p for ps in natural_outcome.values() for p in ps):
            if hit != (pair["label"] == "copy"):
                print(f"--- natural {pair['label']} {pair['a']} -> {pair['b']}: flagged={hit}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
