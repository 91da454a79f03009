"""Arabic named-entity tagger: two stacked linear-chain CRFs over BIO tags for LOC, PERS, ORG, MISC.

The first CRF sees word, affix, clitic, shape, word-cluster and gazetteer features of a sentence.
The second sees the same plus the first one's labels, and what the first one said about the same
word in the neighbouring sentences: news repeats a name many times, and one clear context
("شركة مايكروسوفت") should settle the ambiguous ones.

Models are trained with python-crfsuite by ``scripts/train_ner.py``. Training and tagging build
features with the same functions here (:func:`sentence_groups`, :func:`stacked_groups`), so the
two cannot drift. A model is two files: ``ner-crf.npz`` (the weights of both CRFs, decoded here
with numpy, so tagging does not need crfsuite) and ``ner-crf.lexicon.json`` (word clusters and
gazetteers).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODEL_DIR / "ner-crf.npz"
ENTITY_TYPES = ("LOC", "PERS", "ORG", "MISC")
TRAIN_HINT = (
    "train it with `python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll --full`"
)
# Sentences on each side whose first-pass labels inform the second pass; ANERcorp articles run
# to a few dozen sentences.
CONSISTENCY_WINDOW = 30


class ModelMissing(RuntimeError):
    """A file of the NER model is not where the tagger looks for it."""


def lexicon_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + ".lexicon.json")


# Spelling variation in Arabic news is mostly in hamza seats, final yeh/alef maksura, teh marbuta
# and optional diacritics; folding them makes one feature out of what writers treat as one word.
_FOLD = str.maketrans(
    {
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ی": "ي", "ک": "ك",
        **{chr(0x0660 + d): str(d) for d in range(10)},
        **{chr(0x06F0 + d): str(d) for d in range(10)},
    }
)
_DROP = re.compile("[\u064b-\u065f\u0670\u0640\u200c-\u200f\u202a-\u202e\ufeff]")


def normalize(token: str) -> str:
    """Fold a token to the form the features use (NFKC, no diacritics/tatweel, folded letters)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", token)).translate(_FOLD)


# Conjunction + preposition + article combinations, longest first. The replacement restores the
# article that ل swallows (للبوكمال = ل + البوكمال).
_PROCLITICS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        [
            (c + p + a, "ال" if a else "")
            for c in ("", "و", "ف")
            for p in ("", "ب", "ك")
            for a in ("", "ال")
            if c + p and c + p + a
        ]
        + [(c + "لل", "ال") for c in ("", "و", "ف")]
        + [(c + "ل", "") for c in ("", "و", "ف")],
        key=lambda pair: -len(pair[0]),
    )
)
_MIN_STEM = 3


def strip_proclitics(word: str) -> tuple[str, str]:
    """Split a normalised word into (proclitics, base); the base keeps or regains the article.

    Only the longest split leaving at least three letters is taken. It is a guess (ب is as often
    part of a name, بغداد), so features always carry the unstripped word too.
    """
    for clitic, restore in _PROCLITICS:
        if word.startswith(clitic) and len(word) - len(clitic) >= _MIN_STEM:
            return clitic, restore + word[len(clitic):]
    return "", word


def _bare(base: str) -> str:
    return base[2:] if base.startswith("ال") and len(base) - 2 >= _MIN_STEM else base


def _shape(word: str) -> str:
    if not word:
        return "empty"
    if word.isdigit():
        return "num"
    if any(ch.isdigit() for ch in word):
        return "hasnum"
    if all("a" <= ch.lower() <= "z" for ch in word):
        return "latin"
    if all(unicodedata.category(ch)[0] in "PS" for ch in word):
        return "punct"
    if any("\u0621" <= ch <= "\u064a" for ch in word):
        return "ar"
    return "other"


@dataclass
class Lexicon:
    """Unsupervised word clusters and gazetteers that the features consult.

    ``clusters`` maps a normalised word to its cluster id at each granularity in
    ``cluster_sizes``. ``gazetteer`` maps a normalised name (tokens joined by one space) to its
    kinds joined by "|", e.g. "LOC", "LOC|PT" ("PT": a token of a person's name).
    """

    cluster_sizes: list[int] = field(default_factory=list)
    clusters: dict[str, list[int]] = field(default_factory=dict)
    gazetteer: dict[str, str] = field(default_factory=dict)
    _first_tokens: dict[str, int] = field(default_factory=dict, repr=False)
    _cache: dict[str, _WordFeatures] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in self.gazetteer:
            parts = name.split(" ")
            if len(parts) > 1:
                self._first_tokens[parts[0]] = max(self._first_tokens.get(parts[0], 0), len(parts))

    def save(self, path: Path) -> None:
        data = {"cluster_sizes": self.cluster_sizes, "clusters": self.clusters, "gazetteer": self.gazetteer}
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        data = json.loads(path.read_text("utf-8"))
        return cls(
            cluster_sizes=list(data["cluster_sizes"]),
            clusters=dict(data["clusters"]),
            gazetteer=dict(data["gazetteer"]),
        )

@dataclass(frozen=True)
class _WordFeatures:
    """Features of one word type: its own, and the ones a neighbour sees at each offset."""

    norm: str
    base: str
    key: str
    own: list[str]
    context: dict[int, list[str]]


_CONTEXT_OFFSETS = (-2, -1, 1, 2)
# A news service sees an open-ended vocabulary; dropping the memo now and then keeps memory flat.
_CACHE_LIMIT = 300_000


def _word_features(token: str, lexicon: Lexicon) -> _WordFeatures:
    cached = lexicon._cache.get(token)
    if cached is not None:
        return cached
    word = normalize(token)
    clitic, base = strip_proclitics(word)
    bare = _bare(base)
    shape = _shape(word)
    own = ["bias", f"w={word}", f"base={base}", f"b={bare}", f"cl={clitic}", f"sh={shape}", f"len={min(len(word), 8)}"]
    own += [f"p{k}={word[:k]}" for k in range(1, 6) if len(word) >= k]
    own += [f"s{k}={word[-k:]}" for k in range(1, 6) if len(word) >= k]
    if bare != word:
        own += [f"bp{k}={bare[:k]}" for k in range(2, 5) if len(bare) >= k]
        own += [f"bs{k}={bare[-k:]}" for k in range(2, 5) if len(bare) >= k]
    near = [f"w={word}", f"b={bare}", f"sh={shape}", f"s2={word[-2:]}", f"p2={word[:2]}"]
    far = [f"w={word}", f"sh={shape}"]
    ids = lexicon.clusters.get(word) or lexicon.clusters.get(base) or lexicon.clusters.get(bare)
    if ids is not None:
        for size, cid in zip(lexicon.cluster_sizes, ids):
            own.append(f"c{size}={cid}")
            near.append(f"c{size}={cid}")
        far.append(f"c{lexicon.cluster_sizes[0]}={ids[0]}")
    gaz = lexicon.gazetteer
    kinds = gaz.get(word) or gaz.get(base) or gaz.get(bare)
    if kinds is not None:
        # One feature per kind: joined kinds ("LOC|PT") would be rare values with little weight.
        marks = [f"gz={kind}" for kind in kinds.split("|")]
        own += marks
        near += marks
        far += marks
    context = {
        off: [f"{off}:{f}" for f in (near if abs(off) == 1 else far)] for off in _CONTEXT_OFFSETS
    }
    result = _WordFeatures(word, base, bare, own, context)
    if len(lexicon._cache) >= _CACHE_LIMIT:
        lexicon._cache.clear()
    lexicon._cache[token] = result
    return result


def _gazetteer_spans(words: Sequence[_WordFeatures], lexicon: Lexicon) -> list[list[str]]:
    """Attributes marking multi-word gazetteer names in a sentence (B-/I- per kind), longest
    match first."""
    marks: list[list[str]] = [_NOTHING] * len(words)
    first_tokens = lexicon._first_tokens
    i = 0
    while i < len(words):
        first, base = words[i].norm, words[i].base
        longest = max(first_tokens.get(first, 0), first_tokens.get(base, 0))
        step = 1
        for n in range(min(longest, len(words) - i), 1, -1):
            tail = " ".join(w.norm for w in words[i + 1 : i + n])
            kinds = lexicon.gazetteer.get(f"{first} {tail}") or lexicon.gazetteer.get(f"{base} {tail}")
            if kinds is not None:
                inside = [f"gzs=I-{kind}" for kind in kinds.split("|")]
                marks[i : i + n] = [[f"gzs=B-{kind}" for kind in kinds.split("|")]] + [inside] * (n - 1)
                step = n
                break
        i += step
    return marks


# A token's attributes come in groups: its own, one per neighbour offset, and the ones that depend
# on the exact sentence (word bigrams, multi-word gazetteer matches), always last. All groups but
# the last are shared list objects, cached per word type, so the tagger can cache their weight rows.
Groups = list[list[str]]
_EDGE = {off: [f"{off}:EDGE"] for off in _CONTEXT_OFFSETS}
_NOTHING: list[str] = []


def sentence_groups(tokens: Sequence[str], lexicon: Lexicon) -> list[Groups]:
    """First-pass CRF attributes of every token of a sentence, in groups."""
    words = [_word_features(t, lexicon) for t in tokens]
    norms = [w.norm for w in words]
    spans = _gazetteer_spans(words, lexicon)
    n = len(words)
    out: list[Groups] = []
    for i, wf in enumerate(words):
        groups = [wf.own]
        for off in _CONTEXT_OFFSETS:
            j = i + off
            groups.append(words[j].context[off] if 0 <= j < n else _EDGE[off] if j in (-1, n) else _NOTHING)
        groups.append([
            f"bg-={norms[i - 1] if i else '<s>'}|{wf.norm}",
            f"bg+={wf.norm}|{norms[i + 1] if i + 1 < n else '</s>'}",
            *spans[i],
        ])
        out.append(groups)
    return out


def flatten(sentence: list[Groups]) -> list[list[str]]:
    """Plain per-token attribute lists, as crfsuite's trainer takes them."""
    return [[a for group in groups for a in group] for groups in sentence]


def _kind(tag: str) -> str:
    return tag[2:] if tag != "O" else "O"


def stacked_groups(
    sentences: Sequence[Sequence[str]],
    base: Sequence[list[Groups]],
    first_pass: Sequence[Sequence[str]],
    lexicon: Lexicon,
    window: int = CONSISTENCY_WINDOW,
) -> list[list[Groups]]:
    """Second-pass attributes: ``base`` plus a last group of first-pass labels nearby and of the
    same word (so the sentence-specific group stays last).

    ``sentences`` are consecutive sentences of running text; for each token the first-pass labels
    of the other occurrences of its clitic-free form within ``window`` sentences become features.
    """
    keys = [[_word_features(t, lexicon).key for t in s] for s in sentences]
    kinds = [[_kind(tag) for tag in labels] for labels in first_pass]
    # Label counts per word over a sliding window of sentences, updated as the window moves.
    counts: dict[str, dict[str, int]] = {}

    def shift(sent_no: int, sign: int) -> None:
        for key, kind in zip(keys[sent_no], kinds[sent_no]):
            per_kind = counts.setdefault(key, {})
            per_kind[kind] = per_kind.get(kind, 0) + sign

    for s in range(min(window, len(sentences))):
        shift(s, 1)
    out: list[list[Groups]] = []
    for s, (groups, labels) in enumerate(zip(base, first_pass)):
        if s + window < len(sentences):
            shift(s + window, 1)
        if s - window - 1 >= 0:
            shift(s - window - 1, -1)
        n = len(labels)
        sentence_out = []
        for i, label in enumerate(labels):
            own = kinds[s][i]
            extra = [f"p0={label}"]
            if i:
                extra += [f"p-1={labels[i - 1]}", f"p-1|0={labels[i - 1]}|{label}"]
            if i + 1 < n:
                extra.append(f"p+1={labels[i + 1]}")
            # The token's own first-pass label is in the window too; it must not vote for itself.
            best, best_votes, o_votes = "", 0, 0
            for kind, votes in counts[keys[s][i]].items():
                votes -= kind == own
                if kind == "O":
                    o_votes = votes
                elif votes > best_votes:
                    best, best_votes = kind, votes
            if best:
                extra += [f"dl={best}", f"dlr={best}:{min(best_votes, 3)}:{min(o_votes, 3)}"]
            elif o_votes > 0:
                extra.append("dl=O")
            sentence_out.append([*groups[i][:-1], groups[i][-1] + extra])
        out.append(sentence_out)
    return out


@dataclass
class LinearChain:
    """Weights of one first-order linear-chain CRF, decoded with Viterbi in numpy.

    Trained by python-crfsuite and exported by scripts/train_ner.py: decoding here gives the same
    labels as crfsuite's tagger, but caches the summed weights of each word type's attribute groups
    and scores whole batches of sentences at once, several times faster than handing crfsuite
    lists of strings.
    """

    labels: list[str]
    attributes: list[str]
    weights: np.ndarray  # (attributes + 1, labels); the last row is all zero, for unknown ones
    transitions: np.ndarray  # (labels, labels), from the row label to the column label
    index: dict[str, int] = field(init=False, repr=False)
    # Rows past the attributes' hold the summed weights of attribute groups seen so far.
    _table: np.ndarray = field(init=False, repr=False)
    _used: int = field(init=False, repr=False)
    _group_rows: dict[int, tuple[list[str], int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {a: i for i, a in enumerate(self.attributes)}
        self._forget_groups()

    def _forget_groups(self) -> None:
        self._table = np.concatenate([self.weights, np.zeros((4096, len(self.labels)), np.float32)])
        self._used = len(self.weights)
        self._group_rows = {}

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_labels": _pack(self.labels),
            f"{prefix}_attributes": _pack(self.attributes),
            f"{prefix}_weights": self.weights,
            f"{prefix}_transitions": self.transitions,
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> LinearChain:
        return cls(
            labels=_unpack(arrays[f"{prefix}_labels"]),
            attributes=_unpack(arrays[f"{prefix}_attributes"]),
            weights=arrays[f"{prefix}_weights"].astype(np.float32),
            transitions=arrays[f"{prefix}_transitions"].astype(np.float32),
        )

    def decode(self, sentences: Sequence[list[Groups]]) -> list[list[str]]:
        """Best label sequence for each sentence, given as per-token attribute groups."""
        out: list[list[str]] = [[] for _ in sentences]
        # Sentences of similar length share a batch, so little of the padded array is wasted.
        order = sorted((i for i, s in enumerate(sentences) if s), key=lambda i: len(sentences[i]))
        for k in range(0, len(order), _BATCH):
            batch = order[k : k + _BATCH]
            for i, path in zip(batch, self._viterbi([sentences[i] for i in batch])):
                out[i] = [self.labels[y] for y in path]
        return out

    def _rows(self, sentences: list[list[Groups]]) -> tuple[list[int], list[int]]:
        """Table rows to sum for every token, and where each token's rows start."""
        if len(self._group_rows) >= _CACHE_LIMIT:
            self._forget_groups()
        get, unknown, groups_seen = self.index.get, len(self.attributes), self._group_rows
        new_groups: list[list[str]] = []
        rows: list[int] = []
        starts: list[int] = []
        for sentence in sentences:
            for groups in sentence:
                starts.append(len(rows))
                for group in groups[:-1]:
                    # Keyed by identity: these lists are shared per word type. The entry keeps
                    # the list alive, so its id cannot be reused by another list meanwhile.
                    hit = groups_seen.get(id(group))
                    if hit is None or hit[0] is not group:
                        if not group:
                            continue
                        hit = groups_seen[id(group)] = (group, self._used + len(new_groups))
                        new_groups.append(group)
                    rows.append(hit[1])
                rows += [get(a, unknown) for a in groups[-1]]
        if new_groups:
            self._add_group_rows(new_groups)
        return rows, starts

    def _add_group_rows(self, groups: list[list[str]]) -> None:
        get, unknown = self.index.get, len(self.attributes)
        needed = self._used + len(groups)
        if needed > len(self._table):
            grown = np.zeros((max(needed, 2 * len(self._table)), len(self.labels)), np.float32)
            grown[: self._used] = self._table[: self._used]
            self._table = grown
        ids: list[int] = []
        starts: list[int] = []
        for group in groups:
            starts.append(len(ids))
            ids += [get(a, unknown) for a in group]
        self._table[self._used : needed] = np.add.reduceat(self.weights[ids], starts, axis=0)
        self._used = needed

    def _viterbi(self, sentences: list[list[Groups]]) -> list[list[int]]:
        rows, starts = self._rows(sentences)
        # Every token has at least its own group, so no token's slice is empty.
        emissions = np.add.reduceat(self._table[rows], starts, axis=0)
        lengths = np.array([len(s) for s in sentences])
        n, steps, n_labels = len(sentences), int(lengths.max()), len(self.labels)
        padded = np.zeros((n, steps, n_labels), dtype=np.float32)
        padded[np.arange(steps)[None, :] < lengths[:, None]] = emissions
        # decode() hands sentences shortest first, so those still running at step t are a suffix
        # of the batch: news has the odd sentence of a thousand tokens, and only it is stepped on.
        running_from = np.searchsorted(lengths, np.arange(steps), side="right")
        score = padded[:, 0].copy()
        back = np.zeros((n, steps, n_labels), dtype=np.int8)
        for t in range(1, steps):
            a = running_from[t]
            candidates = score[a:, :, None] + self.transitions
            back[a:, t] = candidates.argmax(axis=1)
            score[a:] = candidates.max(axis=1) + padded[a:, t]
        paths = np.zeros((n, steps), dtype=np.int64)
        # A finished sentence's score stays frozen, so its best last label is its argmax here.
        current = score.argmax(axis=1)
        for t in range(steps - 1, -1, -1):
            a = running_from[t]
            paths[a:, t] = current[a:]
            if t:
                current[a:] = back[a:, t][np.arange(n - a), current[a:]]
        return [paths[i, : lengths[i]].tolist() for i in range(n)]


_BATCH = 256


def _pack(strings: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(strings).encode("utf-8"), dtype=np.uint8)


def _unpack(blob: np.ndarray) -> list[str]:
    return blob.tobytes().decode("utf-8").split("\n")


class CrfTagger:
    """The trained two-stage CRF plus its lexicon; tags tokenised sentences with BIO entity tags."""

    def __init__(self, stage1: LinearChain, stage2: LinearChain, lexicon: Lexicon) -> None:
        self.stage1 = stage1
        self.stage2 = stage2
        self.lexicon = lexicon

    @classmethod
    def load(cls, path: Path | None = None) -> CrfTagger:
        model = Path(path) if path is not None else DEFAULT_MODEL
        for needed in (model, lexicon_path(model)):
            if not needed.is_file():
                raise ModelMissing(f"NER model file {needed} is missing; {TRAIN_HINT}")
        with np.load(model) as arrays:
            stage1 = LinearChain.from_arrays(arrays, "stage1")
            stage2 = LinearChain.from_arrays(arrays, "stage2")
        return cls(stage1, stage2, Lexicon.load(lexicon_path(model)))

    def save(self, path: Path) -> None:
        """Write the model file and its lexicon side file next to it."""
        arrays: dict[str, Any] = {**self.stage1.arrays("stage1"), **self.stage2.arrays("stage2")}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        self.lexicon.save(lexicon_path(path))

    def tag(self, tokens: list[str]) -> list[str]:
        return self.tag_sentences([tokens])[0]

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tag sentences of one text, in order; neighbouring sentences inform each other."""
        base = [sentence_groups(s, self.lexicon) for s in sentences]
        first = self.stage1.decode(base)
        tagged = self.stage2.decode(stacked_groups(sentences, base, first, self.lexicon))
        return [valid_bio(tags) for tags in tagged]


def valid_bio(tags: list[str]) -> list[str]:
    """The CRF can start an entity with I- (it learnt transitions, not the BIO rules): such a
    tag becomes B-, which is how entity_spans reads it anyway, so scores do not change."""
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


class ConllError(ValueError):
    """A line of a CoNLL file that is neither a token nor a token and a BIO tag."""


_TAG = re.compile(r"O|[BI]-[A-Za-z]+")


def read_conll(path: Path | str) -> list[list[tuple[str, str | None]]]:
    """Read a CoNLL file: one token per line, optional gold tag after a tab or space.

    A blank line ends a sentence; with several columns the last one is the tag, and it must be a
    BIO tag: a line of running text would otherwise pass for a token whose last word is its tag.
    ANERcorp has lines with an empty token before the tab: they stay tokens, so output lines up
    with input.
    """
    sentences: list[list[tuple[str, str | None]]] = []
    current: list[tuple[str, str | None]] = []
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if current:
                    sentences.append(current)
                    current = []
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            tag = parts[-1].strip() if len(parts) > 1 else ""
            if tag and not _TAG.fullmatch(tag):
                raise ConllError(f"{path}:{number}: expected TOKEN<TAB>TAG with a tag like O, "
                                 f"B-LOC or I-PERS, got {line[:80]!r}")
            current.append((parts[0], tag or None))
    if current:
        sentences.append(current)
    return sentences


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) spans of a BIO sequence, conlleval-style: a stray I- starts an entity."""
    spans: set[tuple[int, int, str]] = set()
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and label == kind and start >= 0
        if start >= 0 and not continues:
            spans.add((start, i, kind))
            start, kind = -1, ""
        if prefix in ("B", "I") and not continues:
            start, kind = i, label
    return spans


def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, dict[str, float]]:
    """Entity-level precision, recall and F1 (exact span and type) per type and micro-averaged.

    Returns ``{type: {"precision", "recall", "f1", "support"}}`` plus a ``"micro"`` entry; support
    is the number of gold entities.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    counts: dict[str, list[int]] = {}
    for sent_no, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {sent_no}: {len(g)} gold tags but {len(p)} predicted")
        gold_spans, pred_spans = entity_spans(g), entity_spans(p)
        for span in gold_spans | pred_spans:
            tp_fp_fn = counts.setdefault(span[2], [0, 0, 0])
            if span in gold_spans and span in pred_spans:
                tp_fp_fn[0] += 1
            elif span in pred_spans:
                tp_fp_fn[1] += 1
            else:
                tp_fp_fn[2] += 1
    result = {kind: _prf(*c) for kind, c in sorted(counts.items())}
    result["micro"] = _prf(*(sum(c[k] for c in counts.values()) for k in range(3)))
    return result


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}


def format_scores(scores: dict[str, dict[str, float]]) -> str:
    """A small table of entity scores, like conlleval's."""
    rows = [f"{'type':<6} {'prec':>6} {'rec':>6} {'f1':>6} {'gold':>6}"]
    for kind, s in scores.items():
        rows.append(
            f"{kind:<6} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} {int(s['support']):>6}"
        )
    return "\n".join(rows)
