"""Deduplication: drop syndicated copies of a story, pass on everything that carries news.

A document b is a *copy* of an earlier a when it reports a's events and tells a reader of a
nothing new: a new title, a portal's furniture (processors.boilerplate), spelling variants,
re-wrapped lines, a dropped paragraph or a cut ending. An *update* (a's report plus a new death
toll, a denial, a new event) and a *different* story that shares background paragraphs with a are
not copies and pass. The decision therefore looks at what b ADDS to a, not only at how much they
share:

1. Matching form: the story's own sentences (processors.boilerplate drops the furniture),
   normalised (processors.normalize; plus hamza seats, Arabic-Indic and spelled-out digits),
   cut into light-stemmed words, each kept as a 16-bit fingerprint.
2. Exact copies: the same word sequence (a 64-bit hash of it).
3. Near copies: candidates from MinHash LSH (datasketch MinHash over word 3-shingles, banded
   into a compact index) within the time window, then verified against each candidate's stored
   word sequence. A word of b is *covered* when a shingle through it occurs in a: containment,
   not symmetric similarity, decides, so a shortened copy is a copy. Each run of uncovered words
   is what b adds, placed against a by the covered shingles around it:
   - an insertion is news with a figure a did not have (dates and times aside), enough words a
     never used, or a clause with a statement or event verb ("ونفت الوزارة ...");
   - a rewording of about as many of a's words (another desk's phrasing, "غدا" -> "اليوم") is news
     only with a new figure, when what a said was expected no longer is ("من المنتظر" ->
     "قررت"), or when it is mostly words a never used (another story's lead);
   - many new words scattered in small insertions (a referee after each match) are news too.
   b is a copy when most of it is covered and nothing it adds is news; the first such earlier
   document (in arrival order) is the one it copies. When b repeats most of a but adds news, the
   result names a and b's new sentences, so the claim stage can focus on them
   (Document.update_of, Document.new_sentences).

State: per remembered document a compact record in ``state``, a mutable mapping keyed by
document id: time, arrival number and the word fingerprints in order (2 bytes a word, ~0.3 KB
as base64 for a 600-character article, no text). The LSH bands and the exact hash are derived
from it. Only documents that were passed on are remembered: a copy's copy is caught through the
first copy. Records older than the window (by published time, measured from the newest published
time seen) are deleted, and at most ``max_documents`` are kept. The LSH index is in memory and
derived: it is rebuilt from ``state`` whenever the two disagree (first use, restart, partition
reassignment), which is what makes a restored faust table enough to resume.

In the stream (marsad.stream) ``state`` is the faust table ``dedup_documents``: keyed by document
id, changelogged, on the single-partition raw topic, so one worker sees every document in order
and owns the whole table; other workers are standbys that can take over from the changelog. Past
one worker's throughput the stage scales by sharding what "every document" means, not by adding
consumers: partition raw by a key that syndicated copies share (e.g. the story's language or
region, or a cheap content key such as the first LSH band) and give each partition its own
table, accepting that copies across shards are missed; or split the stage in two: a stateless
part (boilerplate and sketches, most of the CPU) parallel over many partitions, feeding a
single-partition matcher that only compares sketches.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import struct
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, cast

import numpy as np
from datasketch import MinHash

from marsad.records import Document, believed_time, parse_time
from processors.boilerplate import StorySentence, matching_form, story_sentences

log = logging.getLogger(__name__)

SHINGLE = 3
# LSH: BANDS bands of ROWS MinHash values. A pair becomes a candidate with probability
# 1 - (1 - J^ROWS)^BANDS: 0.94 at Jaccard 0.3, 0.999 at 0.5, under 1% at 0.02 (unrelated
# news). Low on purpose: a copy that lost half of a has J near 0.5, and verification is cheap.
BANDS, ROWS = 24, 2
# A document shorter than this (after boilerplate) is only matched exactly: a few words fully
# covered by a long article say too little to call it a copy.
MIN_NEAR_WORDS = 10
# At least this share of b's words must be covered by a for b to be a copy of a.
MIN_COVERED = 0.6
# Words a never used that make an insertion news...
MIN_NEW_WORDS = 6
# ... and that make b news when it has this many (and this share of its words) in all, however
# scattered ("/ خالد نصري" after every match of a fixture list).
MIN_SCATTERED_NEW = 8
SCATTERED_SHARE = 0.05
# Words in a new clause with a statement or event verb.
MIN_CLAUSE = 3
# Where b replaces words of a with about as many (another desk's wording), the replacement is news
# only when most of its words are new to a: a different lead, not a paraphrase.
REWORDING_NEW_SHARE = 0.7
MAX_CANDIDATES = 32
DEFAULT_MAX_DOCUMENTS = 200_000

# Arabic-Indic digits and hamza seats (مسؤول/مسئول) vary between sites without changing a word.
_FOLD = str.maketrans({**{c: str(i % 10) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹")},
                       "ؤ": "و", "ئ": "ي", "ء": None})
# "و أضاف" and "وأضاف" are one word, however the site spaced it.
_LOOSE_CONJ = re.compile(r"(?<!\S)([وف]) (?=[^\W\d_])")
_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_]+")
_CONJ = ("و", "ف")
_ARTICLE = ("بال", "كال", "فال", "وال", "لل", "ال")
# Years, times and dates: datelines and "today" restated, not figures.
_DATE_LIKE = re.compile(
    r"^(1[89]|20)\d\d$|^\d{1,2}[:/.]\d{1,2}([:/.]\d{2,4})?$|^\d{4}[/.]\d{1,2}[/.]\d{1,2}$")
# Spelled-out numbers that read the same as digits ("خمسة عشر يوما" = "15 يوما"). Bare ثلاث, ست,
# سبع ... are left alone: they are also words.
_UNITS = {"ثلاثه": 3, "اربعه": 4, "خمسه": 5, "سته": 6, "سبعه": 7, "ثمانيه": 8, "تسعه": 9,
          "عشره": 10}
_TEEN_UNITS = {"احد": 1, "احدي": 1, "اثنا": 2, "اثني": 2, "ثلاث": 3, "ثلاثه": 3, "اربع": 4,
               "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6, "سبع": 7, "سبعه": 7,
               "ثماني": 8, "ثمانيه": 8, "تسع": 9, "تسعه": 9}
_TENS = {f"{stem}{end}": 10 * n for n, stem in enumerate(
    ["", "", "عشر", "ثلاث", "اربع", "خمس", "ست", "سبع", "ثمان", "تسع"]) if stem
    for end in ("ون", "ين")}
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TEEN_UNITS) | frozenset(_TENS)
_FUNCTION_WORDS = """
في من علي الي عن ان او ثم حتي مع بين بعد قبل عند منذ خلال حيث كما لكن بل اذا اذ لم لن لا ما ماذا
هذا هذه هذان ذلك تلك هولاء اولئك هنا هناك الذي التي الذين اللذين اللتين اللواتي
هو هي هم هن انا نحن انت انتم كان كانت يكون تكون كانوا قد لقد سوف كل بعض غير اي ايضا فقط
اليوم امس غدا الان حاليا وقت يوم حول نحو ضد دون عبر لدي له لها لهم به بها بهم فيه فيها منه منها
عليه عليها اليه اليها عنه عنها انه انها بان لان كي وقد فقد ولم ولا وما وفي
"""
# Verbs of statements and events: a new one is news even in a short addition ("ونفت الوزارة ذلك").
_CUE_WORDS = """
قال قالت اكد اكدت اعلن اعلنت نفي نفت صرح صرحت كشف كشفت حذر حذرت اتهم اتهمت طالب طالبت دعا دعت
قرر قررت اوضح اوضحت افاد افادت ذكر ذكرت رفض رفضت اعترف اعترفت تبني تبنت هدد هددت
قتل قتلت اصيب اصيبت ارتفع ارتفعت بلغ بلغت سقط سقطت انفجر استهدف استهدفت اندلع اندلعت شن شنت
اوقف اوقفت اعتقل اعتقلت سيطر سيطرت انسحب انسحبت هاجم هاجمت قصف قصفت توفي توفيت استقال استقالت
وصل وصلت دخل دخلت حرر حررت استعاد استعادت اسفر اسفرت خلف خلفت ادي ادت تمكن تمكنت ضبط ضبطت
حجز حجزت احبط احبطت فجر فجرت اغتال اعدم اختطف اطلق اطلقت اسقط اسقطت دمر دمرت حاصر حاصرت نزح
فر فرت هرب استسلم اجلي وقع وقعت اصدر اصدرت اقر اقرت رد ردت تراجع تراجعت علق علقت الغي الغت
اجل اجلت فاز فازت انهزم خسر خسرت انتخب عين عينت اقال اقالت نقل نقلت توصل توصلت انطلق انطلقت
"""
# What was expected or planned in a: if b drops it where it rewords a, the thing happened (or
# did not), which is news ("من المنتظر أن تصرح اللجنة" -> "قررت اللجنة").
_PLANNED_WORDS = "منتظر ينتظر مرتقب مقرر متوقع يتوقع توقع يعتزم تعتزم يستعد تستعد قريبا سوف"

# What a word can contribute to an addition.
FUNCTION, DATE, CONTENT, NUMBER, CUE = range(5)

_VALUE_VERSION = 3
_HEADER = struct.Struct("<BII")  # version, time (epoch seconds), arrival number


def _stem(word: str) -> str:
    """Light stemming so "والحكومة" and "الحكومة" are one word; never below two letters."""
    if len(word) > 3 and word[0] in _CONJ:
        word = word[1:]
    for article in _ARTICLE:
        if word.startswith(article) and len(word) - len(article) >= 2:
            return word[len(article):]
    return word


def _print(stem: str) -> int:
    """16-bit fingerprint of a word: three in a row make a 48-bit shingle, which is plenty to
    compare two documents, and a remembered document costs two bytes a word."""
    return zlib.crc32(stem.encode()) & 0xFFFF


_FUNCTION = frozenset(_stem(w) for w in _FUNCTION_WORDS.split())
_CUES = frozenset(_stem(w) for w in _CUE_WORDS.split())
_PLANNED = frozenset(_print(_stem(w)) for w in _PLANNED_WORDS.split())


@lru_cache(maxsize=1 << 17)
def _word(token: str) -> tuple[int, int]:
    """A token's fingerprint and kind (cached: news vocabulary is small and Zipfian)."""
    if token[0].isdigit():
        return _print(token), DATE if _DATE_LIKE.match(token) else NUMBER
    stem = _stem(token)
    kind = CUE if stem in _CUES else FUNCTION if stem in _FUNCTION or len(stem) < 3 else CONTENT
    return _print(stem), kind


def _spelled_numbers(tokens: list[str]) -> list[str]:
    """Tokens with spelled-out numbers replaced by their digits."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _TEEN_UNITS and following in ("عشر", "عشره"):
            out.append(str(_TEEN_UNITS[token] + 10))
            i += 2
        elif token in _UNITS and following[:1] == "و" and following[1:] in _TENS:
            out.append(str(_UNITS[token] + _TENS[following[1:]]))
            i += 2
        else:
            value = _UNITS.get(token) or _TENS.get(token)
            out.append(str(value) if value else token)
            i += 1
    return out


def _exact_hash(prints: array) -> int:
    return int.from_bytes(hashlib.blake2b(prints.tobytes(), digest_size=8).digest(), "little")


def _shingles(prints: Iterable[int]) -> list[int]:
    """48-bit shingles from consecutive word fingerprints."""
    p = np.fromiter(prints, dtype=np.uint64)
    if len(p) < SHINGLE:
        # One short shingle for a one- or two-word document.
        padded = p.astype(np.uint16).tobytes().ljust(2 * SHINGLE, b"\0")
        return [int.from_bytes(padded, "little")] if len(p) else []
    return ((p[:-2] << np.uint64(32)) | (p[1:-1] << np.uint64(16)) | p[2:]).tolist()


@dataclass(frozen=True)
class Sketch:
    """What deduplication needs of one document: its words (fingerprint and kind) with the
    sentence each belongs to, and the hashes derived from them."""

    prints: tuple[int, ...]
    kinds: tuple[int, ...]
    sentence_of: tuple[int, ...]  # index into sentences, per word
    sentences: tuple[tuple[int, int], ...]  # offsets into the document text
    shingles: tuple[int, ...]  # shingle i starts at word i
    exact: int


def _story(doc: Document) -> list[StorySentence]:
    sentences = story_sentences(doc.text, doc.title)
    if not sentences:
        # All furniture (or only a headline): match on what there is.
        sentences = [StorySentence(0, len(doc.text), matching_form(doc.text))]
    return sentences


def sketch(doc: Document) -> Sketch:
    prints: list[int] = []
    kinds: list[int] = []
    sentence_of: list[int] = []
    sentences: list[tuple[int, int]] = []
    for sentence in _story(doc):
        folded = _LOOSE_CONJ.sub(r"\1", sentence.norm.translate(_FOLD)).lower()
        tokens = _TOKEN.findall(folded)
        if not _NUMBER_WORDS.isdisjoint(tokens):
            tokens = _spelled_numbers(tokens)
        if tokens:
            sentence_of.extend([len(sentences)] * len(tokens))
            sentences.append((sentence.start, sentence.end))
            sentence_prints, sentence_kinds = zip(*map(_word, tokens))
            prints.extend(sentence_prints)
            kinds.extend(sentence_kinds)
    exact = _exact_hash(array("H", prints))
    return Sketch(tuple(prints), tuple(kinds), tuple(sentence_of), tuple(sentences),
                  tuple(_shingles(prints)), exact)


@dataclass(frozen=True)
class _Remembered:
    """A remembered document as stored in ``state``: no text, only its word fingerprints in order
    (the LSH bands and the exact hash are derived from them when needed)."""

    at: float
    seq: int
    prints: array  # array("H")

    def encode(self) -> str:
        # A record must always be writable: dates outside 1970-2106 are pinned to the range.
        at = min(max(int(self.at), 0), 0xFFFFFFFF)
        packed = _HEADER.pack(_VALUE_VERSION, at, self.seq) + self.prints.tobytes()
        return base64.b64encode(packed).decode("ascii")

    @classmethod
    def decode(cls, value: Any) -> _Remembered:
        raw = base64.b64decode(value)
        version, at, seq = _HEADER.unpack_from(raw)
        if version != _VALUE_VERSION or (len(raw) - _HEADER.size) % 2:
            raise ValueError(f"not a dedup record (version {version}, {len(raw)} bytes)")
        return cls(float(at), seq, array("H", raw[_HEADER.size:]))

    @property
    def exact(self) -> int:
        return _exact_hash(self.prints)


@dataclass(frozen=True)
class DedupResult:
    duplicate_of: str | None
    kind: str | None = None  # "exact", "near" (copies) or "redelivered" (the same id again)
    # Not a copy, but repeats most of this earlier document; new_sentences are what it adds.
    update_of: str | None = None
    new_sentences: tuple[tuple[int, int], ...] = ()
    # Carried from check() to remember(), so a document passed on is not analysed twice.
    sketch: Sketch | None = field(default=None, repr=False, compare=False)
    bands: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def annotate(self, doc: Document) -> Document:
        """The document as passed on: with the update hint when there is one."""
        if self.update_of is None:
            return doc
        return replace(doc, update_of=self.update_of, new_sentences=self.new_sentences)


@dataclass(frozen=True)
class _Verdict:
    covered: float
    new_sentences: tuple[tuple[int, int], ...]


def _compare(b: Sketch, a: _Remembered) -> _Verdict:
    """How much of b a covers, and which of b's sentences add substance to a.

    A word of b is covered when a shingle through it occurs in a. Each run of uncovered words is
    placed against a by the shingles around it: what a has between those two places is what the
    run replaces (nothing, for an insertion).
    """
    a_words = set(a.prints)
    where: dict[int, int] = {}
    for position, shingle in enumerate(_shingles(a.prints)):
        where.setdefault(shingle, position)
    n = len(b.prints)
    covered = [False] * n
    for i, shingle in enumerate(b.shingles):
        if shingle in where:
            covered[i:i + SHINGLE] = [True] * len(covered[i:i + SHINGLE])
    novelty: list[tuple[int, int, int]] = []  # run, and how many words a never used it brings
    substantive: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < n and not covered[j]:
            j += 1
        new = [kind for fp, kind in zip(b.prints[i:j], b.kinds[i:j])
               if kind not in (FUNCTION, DATE) and fp not in a_words]
        replaced = _replaced(b, a, where, i, j)
        if (j - i) / 2 <= len(replaced) <= 2 * (j - i) + 2:
            # b rewords a here. Another desk's wording is no news unless it changes a figure or
            # what was only expected; a different lead is, and it is mostly words a never used.
            content = sum(kind != FUNCTION for kind in b.kinds[i:j])
            fresh = len(new) if len(new) >= REWORDING_NEW_SHARE * content else 0
            news = NUMBER in new or _changed_plan(replaced, b.prints[i:j]) or fresh >= MIN_NEW_WORDS
        else:
            fresh = len(new)
            news = (NUMBER in new or fresh >= MIN_NEW_WORDS
                    or (CUE in b.kinds[i:j] and j - i >= MIN_CLAUSE and fresh >= 2))
        novelty.append((i, j, fresh))
        if news:
            substantive.append((i, j))
        i = j
    if sum(fresh for _, _, fresh in novelty) >= max(MIN_SCATTERED_NEW, SCATTERED_SHARE * n):
        # Many new words in small pieces (a referee after every match of a fixture list): news
        # as well, wherever they are.
        substantive.extend((i, j) for i, j, fresh in novelty if fresh)
    new_sentences = sorted({b.sentence_of[k] for i, j in substantive for k in range(i, j)})
    return _Verdict(sum(covered) / n if n else 0.0, tuple(b.sentences[s] for s in new_sentences))


def _replaced(b: Sketch, a: _Remembered, where: dict[int, int], i: int, j: int) -> array:
    """The words of a between the covered shingles that enclose b's run [i, j)."""
    start = where.get(b.shingles[i - SHINGLE], -SHINGLE) + SHINGLE if i >= SHINGLE else 0
    end = where.get(b.shingles[j], len(a.prints)) if j < len(b.shingles) else len(a.prints)
    return a.prints[start:end] if start <= end else a.prints[0:0]


def _changed_plan(replaced: array, run: tuple[int, ...]) -> bool:
    """a said something was expected where b, rewording it, no longer does."""
    return any(fp in _PLANNED for fp in replaced) and not any(fp in _PLANNED for fp in run)


class _BandIndex:
    """LSH band key -> slots, in sorted numpy arrays (8 bytes an entry, where a dict of Python
    ints costs ~100) plus a small dict of recent entries merged in batches. Keys are 32-bit: a
    rare collision only adds a candidate, which verification then drops."""

    # Recent entries are merged once they are this share of the sorted ones (at least MERGE_AT):
    # each entry is then re-sorted a logarithmic number of times, whatever the window holds.
    MERGE_AT = 4096
    MERGE_SHARE = 1 / 16

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint32)
        self._slots = np.empty(0, dtype=np.uint32)
        self._recent: dict[int, list[int]] = {}

    def add(self, keys: Iterable[int], slot: int) -> None:
        for key in keys:
            self._recent.setdefault(key, []).append(slot)
        if len(self._recent) >= max(self.MERGE_AT, self.MERGE_SHARE * len(self._keys)):
            self.compact(None)

    def lookup(self, keys: list[int]) -> Counter[int]:
        hits: Counter[int] = Counter()
        if len(self._keys):
            query = np.asarray(keys, dtype=np.uint32)
            lo = np.searchsorted(self._keys, query, "left")
            hi = np.searchsorted(self._keys, query, "right")
            for start, end in zip(lo.tolist(), hi.tolist()):
                if start < end:
                    hits.update(self._slots[start:end].tolist())
        for key in keys:
            if slots := self._recent.get(key):
                hits.update(slots)
        return hits

    def compact(self, renumber: np.ndarray | None) -> None:
        """Merge recent entries; with ``renumber`` (old slot -> new slot, -1 for gone) also drop
        and renumber slots."""
        keys, slots = self._keys, self._slots
        if self._recent:
            pairs = [(key, slot) for key, held in self._recent.items() for slot in held]
            keys = np.concatenate([keys, np.fromiter((k for k, _ in pairs), np.uint32, len(pairs))])
            slots = np.concatenate([slots, np.fromiter((s for _, s in pairs), np.uint32, len(pairs))])
            self._recent = {}
        if renumber is not None:
            mapped = renumber[slots]
            keep = mapped >= 0
            keys, slots = keys[keep], mapped[keep].astype(np.uint32)
        order = np.argsort(keys, kind="stable")
        self._keys, self._slots = keys[order], slots[order]

    def nbytes(self) -> int:
        return self._keys.nbytes + self._slots.nbytes


class Deduplicator:
    """Checking and remembering are separate steps so the stream can remember a document only
    after it was forwarded: a crash in between then re-sends it, it never loses it.

    ``state`` is any mutable mapping from document id to the compact record (a faust table in the
    stream, a dict in the CLI); this object only holds an index derived from it.
    """

    def __init__(self, window_seconds: float, max_documents: int = DEFAULT_MAX_DOCUMENTS):
        self.window = window_seconds
        self.max_documents = max_documents
        # Fixed permutations (seed 1): bands rebuilt after a restart must mean the same thing.
        # One MinHash, cleared for each document: building one draws its permutations again.
        self._minhash = MinHash(num_perm=BANDS * ROWS, seed=1, hashfunc=_identity,
                                scheme="affine32")
        self._state: Mapping[str, Any] | None = None
        self._index = _BandIndex()
        self._ids: list[str | None] = []  # slot -> document id (None once forgotten)
        self._times = array("d")  # slot -> time
        self._count = 0
        self._unreadable = 0  # entries of state this version cannot decode
        self._oldest = float("-inf")
        # The window's clock: the newest published time seen, or, while no document had one,
        # the newest arrival.
        self._newest_published = self._newest_arrival = float("-inf")
        self._next_seq = 0

    # -- the two steps -------------------------------------------------------------------------

    def check(self, doc: Document, state: Mapping[str, Any]) -> DedupResult:
        self._sync(state)
        if doc.id in state:
            # The same document again (a redelivery after a crash, or sent twice): it was passed
            # on the first time.
            return DedupResult(doc.id, "redelivered")
        b = sketch(doc)
        if not b.prints:
            # Nothing to compare (punctuation and figures only): never a copy.
            return DedupResult(None, sketch=b)
        bands = self._bands(b.shingles)
        at, _ = self._when(doc)
        hits = self._index.lookup(_index_keys(bands, b.exact))
        slots = sorted(
            (slot for slot in hits
             if self._ids[slot] is not None and abs(at - self._times[slot]) <= self.window),
            key=lambda slot: (-hits[slot], slot),
        )[:MAX_CANDIDATES]
        copies: list[tuple[int, str]] = []
        best_update: tuple[float, int, _Verdict] | None = None
        for slot in slots:
            # Only live slots are candidates (the filter above).
            a = _Remembered.decode(state[cast(str, self._ids[slot])])
            if a.exact == b.exact:
                copies.append((slot, "exact"))
                continue
            if len(b.prints) < MIN_NEAR_WORDS:
                continue
            verdict = _compare(b, a)
            if verdict.covered < MIN_COVERED:
                continue
            if not verdict.new_sentences:
                copies.append((slot, "near"))
            elif best_update is None or verdict.covered > best_update[0]:
                best_update = (verdict.covered, slot, verdict)
        if copies:
            slot, kind = min(copies)
            return DedupResult(self._ids[slot], kind)
        if best_update is not None:
            _, slot, verdict = best_update
            return DedupResult(None, None, self._ids[slot], verdict.new_sentences, b, bands)
        return DedupResult(None, sketch=b, bands=bands)

    def remember(self, doc: Document, result: DedupResult, state: MutableMapping[str, Any]) -> None:
        if result.duplicate_of is not None:
            return
        self._sync(state)
        b = result.sketch or sketch(doc)
        if not b.prints:
            return
        at, dated = self._when(doc)
        record = _Remembered(at, self._next_seq, array("H", b.prints))
        state[doc.id] = record.encode()
        self._add(doc.id, record, result.bands or self._bands(b.shingles), dated)
        self._expire(state)

    # -- state -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def index_bytes(self) -> int:
        """Memory of the derived index (numpy arrays and per-slot arrays), for the benchmark."""
        return self._index.nbytes() + self._times.itemsize * len(self._times) + 8 * len(self._ids)

    def _sync(self, state: Mapping[str, Any]) -> None:
        """Rebuild the index when ``state`` is not what it was built from: another mapping, or a
        table restored from its changelog or handed over from another worker."""
        if state is self._state and len(state) == self._count + self._unreadable:
            return
        self._state = state
        self._index = _BandIndex()
        self._ids, self._times, self._count, self._unreadable = [], array("d"), 0, 0
        self._oldest = self._newest_published = self._newest_arrival = float("-inf")
        self._next_seq = 0
        records: list[tuple[int, str, _Remembered]] = []
        for doc_id, value in state.items():
            try:
                record = _Remembered.decode(value)
            except (ValueError, TypeError, struct.error) as exc:
                log.warning("dedup: ignoring unreadable state entry %s (%s)", doc_id, exc)
                self._unreadable += 1
                continue
            records.append((record.seq, doc_id, record))
        for _, doc_id, record in sorted(records, key=lambda item: item[0]):
            self._add(doc_id, record, self._bands(_shingles(record.prints)), dated=True)
        self._index.compact(None)
        if records:
            log.info("dedup: index rebuilt from %d remembered documents", len(records))

    def _add(self, doc_id: str, record: _Remembered, bands: tuple[int, ...], dated: bool) -> None:
        slot = len(self._ids)
        self._ids.append(doc_id)
        self._times.append(record.at)
        self._count += 1
        self._index.add(_index_keys(bands, record.exact), slot)
        self._oldest = record.at if self._count == 1 else min(self._oldest, record.at)
        if dated:
            self._newest_published = max(self._newest_published, record.at)
        else:
            self._newest_arrival = max(self._newest_arrival, record.at)
        self._next_seq = max(self._next_seq, record.seq + 1)

    def _expire(self, state: MutableMapping[str, Any]) -> None:
        """Forget what fell out of the window, and the oldest beyond max_documents. Runs once
        the oldest record is a little (1/64 of the window) past the horizon, so the scan is
        occasional; check() ignores records outside the window meanwhile."""
        horizon = self._clock() - self.window
        if self._oldest >= horizon - self.window / 64 and self._count <= self.max_documents:
            return
        times = np.frombuffer(self._times, dtype=np.float64)
        alive = np.fromiter((doc_id is not None for doc_id in self._ids), bool, len(self._ids))
        gone = alive & (times < horizon)
        # Over the cap, forget down to 95% of it, so the next documents do not scan again.
        excess = int(alive.sum() - gone.sum()) - self.max_documents
        if excess > 0:
            excess += self.max_documents // 20
            keep = np.flatnonzero(alive & ~gone)
            gone[keep[np.argpartition(times[keep], excess - 1)[:excess]]] = True
        for slot in np.flatnonzero(gone).tolist():
            state.pop(cast(str, self._ids[slot]), None)  # gone slots are live ones
            self._ids[slot] = None
        self._count -= int(gone.sum())
        alive &= ~gone
        self._oldest = float(times[alive].min()) if alive.any() else float("-inf")
        # Drop forgotten slots, so per-slot memory follows what is remembered, not history.
        renumber = np.full(len(self._ids), -1, dtype=np.int64)
        renumber[alive] = np.arange(int(alive.sum()))
        self._index.compact(renumber)
        self._ids = [doc_id for doc_id in self._ids if doc_id is not None]
        self._times = array("d", times[alive].tolist())

    def _clock(self) -> float:
        published = self._newest_published
        return published if published != float("-inf") else self._newest_arrival

    def _when(self, doc: Document) -> tuple[float, bool]:
        """The document's time on the window's clock, and whether it is a published time.

        A published time is not believed beyond arrival plus CLOCK_SKEW (one mis-dated article
        must not expire everything). An undated document counts as arriving now, unless now is
        beyond the window from the newest published time seen: then this is a backfill of old
        articles and it joins them. Undated documents never move the clock once a dated one was
        seen, so one of them at the head of a backfill cannot expire all that follows.
        """
        published = parse_time(doc.published) if doc.published else None
        arrived = doc.ingested_at or time.time()
        if published is not None:
            return believed_time(published, arrived), True
        newest = self._newest_published
        if newest != float("-inf") and arrived > newest + self.window:
            return newest, False
        return arrived, False

    def _bands(self, shingles: Sequence[int]) -> tuple[int, ...]:
        minhash = self._minhash
        minhash.clear()
        # 48-bit shingles folded to the 32 bits the affine32 scheme takes (it mixes them further).
        folded = (np.asarray(shingles, dtype=np.uint64) * _GOLDEN) >> np.uint64(32)
        minhash.update_batch(folded.tolist())
        rows = minhash.hashvalues.astype(np.uint64).reshape(BANDS, ROWS)
        bands = (rows[:, 0] * _GOLDEN + rows[:, 1]) * _GOLDEN >> np.uint64(32)
        return tuple(bands.tolist())


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _identity(value: int) -> int:
    return value


def _index_keys(bands: tuple[int, ...], exact: int) -> list[int]:
    """32-bit index keys: one per band (the band's number mixed in, so equal values in different
    bands do not meet) and one for the exact hash."""
    keys = [(band ^ (index * 0x9E3779B1)) & 0xFFFFFFFF for index, band in enumerate(bands)]
    keys.append((exact ^ (len(bands) * 0x9E3779B1)) & 0xFFFFFFFF)
    return keys
