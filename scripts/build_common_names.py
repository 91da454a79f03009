"""Find gazetteer place names that are everyday words, from how often Tunisian news uses them.

A Syrian village called جديدة ("new") or سنة ("year") shows up in thousands of Tunisian articles
that are not about it; a real town name rarely does. Names used in at least --min-docs of the
10k articles in ../shared/data/corpus are written to processors/data/common_names.txt, except
cities the corpus really reports on (--keep). Only this derived list is committed.

    python scripts/build_common_names.py
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
from pathlib import Path

from processors.gazetteer import geonames_places
from processors.normalize import normalize
from processors.phrases import phrase_keys

ROOT = Path(__file__).resolve().parents[1]
KEEP = ("القدس", "اسطنبول", "بغداد", "الرياض", "طرابلس", "دمشق", "حلب", "الموصل", "بيروت")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=ROOT.parent / "shared/data/corpus/jawharafm-ant-v1.1.jsonl.gz")
    parser.add_argument("--min-docs", type=int, default=15)
    parser.add_argument("--out", default=ROOT / "processors/data/common_names.txt")
    args = parser.parse_args()

    document_frequency: collections.Counter[str] = collections.Counter()
    with gzip.open(args.corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            document_frequency.update(set(normalize(json.loads(line)["text"]).split()))
    names = {key[0] for place in geonames_places() for name in (place.name_ar, *place.names)
             for key in phrase_keys(name) if len(key) == 1}
    keep = {normalize(name) for name in KEEP}
    common = sorted(n for n in names if document_frequency[n] >= args.min_docs and n not in keep)
    Path(args.out).write_text("\n".join(common) + "\n", encoding="utf-8")
    print(f"{len(common)} of {len(names)} one-word place names are common words -> {args.out}")


if __name__ == "__main__":
    main()
