"""Tagging speed of the NER model (processors/ner.py) on one core, feature extraction included.

    python bench/ner_speed.py                                   # ANERcorp train.conll from ../shared
    python bench/ner_speed.py --conll FILE.conll --per-sentence

The text is tagged twice by one tagger. The first pass starts with empty memos, so it pays for
every word type once (features, weight sums), as a freshly started service would; the second pass
is the steady state of a long-running one, whose vocabulary is mostly seen. Wall-clock and
CPU-time rates are both printed: on a machine busy with other work the wall clock also counts time
spent waiting for the core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from processors.ner import CrfTagger, read_conll  # noqa: E402

DEFAULT_CONLL = REPO.parent / "shared" / "data" / "anercorp" / "train.conll"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conll", type=Path, default=DEFAULT_CONLL, help="sentences to tag (gold tags ignored)")
    ap.add_argument("--model", type=Path, default=None, help="model path (default: the committed one)")
    ap.add_argument(
        "--per-sentence", action="store_true",
        help="call tag() once per sentence instead of tag_sentences() on chunks of sentences",
    )
    ap.add_argument("--chunk", type=int, default=200, help="sentences per tag_sentences() call")
    args = ap.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sentences = [[token for token, _ in s] for s in read_conll(args.conll)]
    n_tokens = sum(len(s) for s in sentences)
    tagger = CrfTagger.load(args.model)

    mode = "tag() per sentence" if args.per_sentence else f"tag_sentences() in chunks of {args.chunk}"
    print(f"{n_tokens:,} tokens in {len(sentences):,} sentences, {mode}, one core")
    for label in ("first pass (cold)", "second pass (warm)"):
        started, cpu_started = time.perf_counter(), time.process_time()
        if args.per_sentence:
            for sentence in sentences:
                tagger.tag(sentence)
        else:
            for k in range(0, len(sentences), args.chunk):
                tagger.tag_sentences(sentences[k : k + args.chunk])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        print(f"{label}: wall {elapsed:.2f} s = {n_tokens / elapsed:,.0f} tokens/s; "
              f"CPU {cpu:.2f} s = {n_tokens / cpu:,.0f} tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
