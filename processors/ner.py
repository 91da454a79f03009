"""Arabic named-entity tagger: a linear-chain CRF over BIO tags for LOC, PERS, ORG and MISC.

The model is trained by ``scripts/train_ner.py`` on ANERcorp. Training and tagging both build their
features with :func:`sentence_features`, so the two cannot drift apart. Besides the CRF weights a
model has a lexicon side file (word clusters learned from unlabelled news, and place-name
gazetteers) that the features read.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pycrfsuite

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODEL_DIR / "ner-crf.crfsuite"
ENTITY_TYPES = ("LOC", "PERS", "ORG", "MISC")
TRAIN_HINT = (
    "train it with `python scripts/train_ner.py --conll ../shared/data/anercorp/train.conll --full`"
)


class ModelMissing(RuntimeError):
    """The CRF model or its lexicon side file is not where the tagger looks for it."""


def lexicon_path(model_path: Path) -> Path:
    """Where the lexicon side file of a model lives (next to it, same stem)."""
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
    folded = _DROP.sub("", unicodedata.normalize("NFKC", token)).translate(_FOLD)
    return folded or token


# Conjunction + preposition + article combinations, longest first. The replacement restores the
# article that ل swallows (للبوكمال = ل + البوكمال).
_PROCLITICS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        [
            (c + p + a, "ال" if a else "")
            for c in ("", "و", "ف")
            for p in ("", "ب", "ك")
            for a in ("", "ال")
        ]
        + [(c + "لل", "ال") for c in ("", "و", "ف")]
        + [(c + "ل", "") for c in ("", "و", "ف")],
        key=lambda pr: -len(pr[0]),
    )
)
_PROCLITICS = tuple(pr for pr in _PROCLITICS if pr[0] and pr[0] != "ال")
_MIN_STEM = 3


def strip_proclitics(word: str) -> tuple[str, str]:
    """Split a normalised word into (proclitics, base); the base keeps or regains the article.

    Only the longest split that leaves at least three letters is taken: a lexicon can still match
    the unstripped word first, since a single letter like ب is as often part of a name (بغداد).
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

    ``clusters`` maps a normalised word to its cluster ids at each granularity in
    ``cluster_sizes``; ``gazetteer`` maps a normalised name (tokens joined by a space) to an
    entity type.
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

    def to_json(self) -> dict[str, object]:
        return {
            "cluster_sizes": self.cluster_sizes,
            "clusters": self.clusters,
            "gazetteer": self.gazetteer,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Lexicon:
        return cls(
            cluster_sizes=list(data["cluster_sizes"]),  # type: ignore[call-overload]
            clusters=dict(data["clusters"]),  # type: ignore[call-overload]
            gazetteer=dict(data["gazetteer"]),  # type: ignore[call-overload]
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        return cls.from_json(json.loads(path.read_text("utf-8")))

    def gazetteer_type(self, word: str) -> str | None:
        """Entity type of a normalised single word, trying it bare and with proclitics removed."""
        hit = self.gazetteer.get(word)
        if hit is None:
            base = strip_proclitics(word)[1]
            hit = self.gazetteer.get(base) or self.gazetteer.get(_bare(base))
        return hit


@dataclass(frozen=True)
class _WordFeatures:
    """Features of one word type: its own, and the ones neighbours see at each offset."""

    norm: str
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
    near = [f"w={word}", f"b={bare}", f"sh={shape}", f"s2={word[-2:]}", f"p2={word[:2]}"]
    far = [f"w={word}", f"sh={shape}"]
    own = [f"w={word}", f"base={base}", f"b={bare}", f"cl={clitic}", f"sh={shape}", f"len={min(len(word), 8)}"]
    own += [f"p{k}={word[:k]}" for k in range(1, 6) if len(word) >= k]
    own += [f"s{k}={word[-k:]}" for k in range(1, 6) if len(word) >= k]
    if bare != word:
        own += [f"bp{k}={bare[:k]}" for k in range(2, 5) if len(bare) >= k]
        own += [f"bs{k}={bare[-k:]}" for k in range(2, 5) if len(bare) >= k]
    ids = lexicon.clusters.get(word) or lexicon.clusters.get(base) or lexicon.clusters.get(bare)
    if ids is not None:
        for size, cid in zip(lexicon.cluster_sizes, ids):
            own.append(f"c{size}={cid}")
            near.append(f"c{size}={cid}")
        far.append(f"c{lexicon.cluster_sizes[0]}={ids[0]}")
    gaz = lexicon.gazetteer_type(word)
    if gaz is not None:
        own.append(f"gz={gaz}")
        near.append(f"gz={gaz}")
        far.append(f"gz={gaz}")
    context = {
        off: [f"{off}:{f}" for f in (near if abs(off) == 1 else far)] for off in _CONTEXT_OFFSETS
    }
    result = _WordFeatures(word, own, context)
    if len(lexicon._cache) >= _CACHE_LIMIT:
        lexicon._cache.clear()
    lexicon._cache[token] = result
    return result


def _gazetteer_spans(norms: Sequence[str], lexicon: Lexicon) -> list[str | None]:
    """BIO-style marks of multi-word gazetteer names found in the sentence, longest match first."""
    marks: list[str | None] = [None] * len(norms)
    i = 0
    while i < len(norms):
        first = norms[i]
        longest = lexicon._first_tokens.get(first, 0)
        base = strip_proclitics(first)[1]
        longest = max(longest, lexicon._first_tokens.get(base, 0))
        matched = 0
        for n in range(min(longest, len(norms) - i), 1, -1):
            tail = " ".join(norms[i + 1 : i + n])
            typ = lexicon.gazetteer.get(f"{first} {tail}") or lexicon.gazetteer.get(f"{base} {tail}")
            if typ is not None:
                marks[i] = f"B-{typ}"
                for j in range(i + 1, i + n):
                    marks[j] = f"I-{typ}"
                matched = n
                break
        i += matched or 1
    return marks


def sentence_features(tokens: Sequence[str], lexicon: Lexicon) -> list[list[str]]:
    """CRF attributes for every token of a sentence (shared by training and tagging)."""
    words = [_word_features(t, lexicon) for t in tokens]
    norms = [w.norm for w in words]
    spans = _gazetteer_spans(norms, lexicon) if lexicon._first_tokens else [None] * len(words)
    n = len(words)
    out: list[list[str]] = []
    for i, wf in enumerate(words):
        feats = ["bias", *wf.own]
        for off in _CONTEXT_OFFSETS:
            j = i + off
            if 0 <= j < n:
                feats += words[j].context[off]
            elif j == -1 or j == n:
                feats.append(f"{off}:EDGE")
        prev_w = norms[i - 1] if i > 0 else "<s>"
        next_w = norms[i + 1] if i + 1 < n else "</s>"
        feats.append(f"bg-={prev_w}|{wf.norm}")
        feats.append(f"bg+={wf.norm}|{next_w}")
        if spans[i] is not None:
            feats.append(f"gzs={spans[i]}")
        out.append(feats)
    return out


class CrfTagger:
    """A trained CRF plus its lexicon; tags tokenised sentences with BIO entity tags."""

    def __init__(self, tagger: pycrfsuite.Tagger, lexicon: Lexicon) -> None:
        self._tagger = tagger
        self.lexicon = lexicon

    @classmethod
    def load(cls, path: Path | None = None) -> CrfTagger:
        model = Path(path) if path is not None else DEFAULT_MODEL
        side = lexicon_path(model)
        for needed in (model, side):
            if not needed.is_file():
                raise ModelMissing(f"NER model file {needed} is missing; {TRAIN_HINT}")
        tagger = pycrfsuite.Tagger()
        tagger.open(str(model))
        return cls(tagger, Lexicon.load(side))

    def tag(self, tokens: list[str]) -> list[str]:
        if not tokens:
            return []
        return list(self._tagger.tag(sentence_features(tokens, self.lexicon)))

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        return [self.tag(sentence) for sentence in sentences]


def read_conll(path: Path | str) -> list[list[tuple[str, str | None]]]:
    """Read a CoNLL file: one token per line, optional gold tag after a tab or space.

    A blank line ends a sentence. With several columns the last one is taken as the tag.
    """
    sentences: list[list[tuple[str, str | None]]] = []
    current: list[tuple[str, str | None]] = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\r\n")
            if not line.strip():
                if current:
                    sentences.append(current)
                    current = []
                continue
            # ANERcorp has lines with an empty token before the tab; they stay tokens so that the
            # output lines up with the input.
            parts = line.split("\t") if "\t" in line else line.split()
            tag = parts[-1].strip() if len(parts) > 1 else ""
            current.append((parts[0], tag or None))
    if current:
        sentences.append(current)
    return sentences


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) spans of a BIO sequence, conlleval-style: a stray I- starts an entity."""
    spans: set[tuple[int, int, str]] = set()
    start, typ = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and label == typ and start >= 0
        if start >= 0 and not continues:
            spans.add((start, i, typ))
            start, typ = -1, ""
        if prefix in ("B", "I") and not continues:
            start, typ = i, label
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
        gs, ps = entity_spans(g), entity_spans(p)
        for span in gs | ps:
            tp_fp_fn = counts.setdefault(span[2], [0, 0, 0])
            if span in gs and span in ps:
                tp_fp_fn[0] += 1
            elif span in ps:
                tp_fp_fn[1] += 1
            else:
                tp_fp_fn[2] += 1
    result = {typ: _prf(*c) for typ, c in sorted(counts.items())}
    result["micro"] = _prf(*(sum(c[k] for c in counts.values()) for k in range(3)))
    return result


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": float(tp + fn)}


def format_scores(scores: dict[str, dict[str, float]]) -> str:
    """A small table of entity scores, the way conlleval prints them."""
    rows = [f"{'type':<6} {'prec':>6} {'rec':>6} {'f1':>6} {'gold':>6}"]
    for typ, s in scores.items():
        rows.append(
            f"{typ:<6} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} {int(s['support']):>6}"
        )
    return "\n".join(rows)


def iter_tokens(sentences: Iterable[list[tuple[str, str | None]]]) -> Iterable[list[str]]:
    """Just the tokens of read_conll's sentences."""
    for sentence in sentences:
        yield [token for token, _ in sentence]
