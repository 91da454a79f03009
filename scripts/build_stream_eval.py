#!/usr/bin/env python3
"""Build the input of the stream evaluation: the documents listed in tests/data/stream_gold.jsonl,
in that order, as contract JSONL (id, url, source, title, published, text).

Corpus articles are read from ../shared/data/corpus (the corpus is not copied into the repo); the
seeds come from seeds/*.txt, with their metadata (published, source) from
tests/data/stream_gold_docs.jsonl. Corpus dates such as "0211-20-16T00:00:00+00:00" are repaired
from the id (…-02112016 -> 2016-11-02), because the gold's 14-day novelty window depends on them;
--raw-dates keeps them as they are.

    python scripts/build_stream_eval.py --out /tmp/stream_eval.jsonl
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def repaired(doc_id: str, published: str | None) -> str | None:
    try:
        if published and datetime.fromisoformat(published).year >= 2000:
            return published
    except ValueError:
        pass
    m = re.search(r"-(\d{8})$", doc_id)
    if not m:
        return published
    s = m.group(1)
    y, mo, d = (s[:4], s[4:6], s[6:]) if s.startswith("20") else (s[4:], s[2:4], s[:2])
    return f"{y}-{mo}-{d}T00:00:00+00:00"


def read_jsonl(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def seed_doc(name: str, meta: dict) -> dict:
    lines = (ROOT / "seeds" / name).read_text(encoding="utf-8-sig").splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip())
    title = lines[first].strip()
    text = "\n".join(lines[first + 1:]).strip() or title
    return {"id": f"seed:{name}", "url": meta.get("url"), "source": meta.get("source") or name,
            "title": title, "published": meta.get("published"), "text": text}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSONL file to write")
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "corpus"),
                    help="corpus folder or .jsonl(.gz) file (default: ../shared/data/corpus)")
    ap.add_argument("--gold", default=str(ROOT / "tests" / "data" / "stream_gold.jsonl"))
    ap.add_argument("--raw-dates", action="store_true", help="keep malformed corpus dates unchanged")
    args = ap.parse_args(argv)

    ids = [row["doc_id"] for row in read_jsonl(Path(args.gold))]
    seeds = {row["id"]: row for row in read_jsonl(ROOT / "tests" / "data" / "stream_gold_docs.jsonl")}
    wanted = {i for i in ids if not i.startswith("seed:")}

    corpus_path = Path(args.corpus)
    files = sorted(corpus_path.glob("*.jsonl*")) if corpus_path.is_dir() else [corpus_path]
    if not files or not all(f.exists() for f in files):
        print(f"build_stream_eval: no corpus at {corpus_path}", file=sys.stderr)
        return 1
    found: dict[str, dict] = {}
    for f in files:
        for row in read_jsonl(f):
            if row.get("id") in wanted and row["id"] not in found:
                found[row["id"]] = row
    missing = sorted(wanted - found.keys())
    if missing:
        print(f"build_stream_eval: {len(missing)} ids not in the corpus, e.g. {missing[0]}", file=sys.stderr)
        return 1

    with open(args.out, "w", encoding="utf-8") as out:
        for doc_id in ids:
            if doc_id.startswith("seed:"):
                doc = seed_doc(doc_id[len("seed:"):], seeds.get(doc_id, {}))
            else:
                row = found[doc_id]
                published = row.get("published") if args.raw_dates else repaired(doc_id, row.get("published"))
                doc = {"id": doc_id, "url": row.get("url"), "source": row.get("source"),
                       "title": row.get("title"), "published": published, "text": row.get("text")}
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"build_stream_eval: wrote {len(ids)} documents to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
