"""Deduplication: drop syndicated copies of a story, pass on everything that carries news.

A document b is a *copy* of an earlier a when it reports a's events and tells a reader of a
nothing new: a new title, a portal's furniture (processors.boilerplate), spelling variants,
re-wrapped lines, a dropped paragraph or a cut ending. An *update* (a's report plus a new death
toll, a denial, a new event) and a *different* story that shares background paragraphs with a are
not copies and pass. The decision therefore looks at what b ADDS to a, not only at how much they
share:

1. Matching form: the story's own lines (boilerplate removed), normalised (processors.normalize,
   plus hamza seats and Arabic-Indic digits), cut into light-stemmed words.
2. Exact copies: the same word sequence (a 64-bit hash of it).
3. Near copies: candidates from MinHash LSH (datasketch MinHash over word 3-shingles, banded
   into a compact index) within the time window, then verified against each candidate's stored
   shingle and word fingerprints. A word of b is *covered* when a shingle through it occurs in a;
   containment, not symmetric similarity, decides (a shortened copy covers little of a but is
   covered by a). Runs of uncovered words are what b adds; a run is *substantive* when it brings
   a number a did not have (dates and times aside), or enough words a never used, or a new
   statement or event verb. b is a copy when most of it is covered and nothing it adds is
   substantive; the first such earlier document (in arrival order) is the one it copies.
   When b repeats most of a but adds substance, the result names a and the new sentences, so the
   claim stage can focus on what is new (Document.update_of, Document.new_sentences).

State: per remembered document a compact record (time, arrival number, exact hash, LSH band
hashes, 16-bit fingerprints of its shingles and words; ~0.4 KB, no text) in ``state``, a mutable
mapping keyed by document id. Only documents that were passed on are remembered: a copy's copy is
caught through the first copy. Records older than the window (by published time, measured from the
newest document seen) are deleted, and at most ``max_documents`` are kept. The LSH index itself is
in memory and derived: it is rebuilt from ``state`` whenever the two disagree (first use, restart,
partition reassignment), which is what makes a restored faust table enough to resume.

In the stream (marsad.stream) ``state`` is the faust table ``dedup_documents``: keyed by document
id, changelogged, on the single-partition raw topic, so one worker sees every document in order
and owns the whole table; other workers are standbys that can take over from the changelog. Past
one worker's throughput the stage scales by sharding what "every document" means, not by adding
consumers: partition raw by a key that syndicated copies share (e.g. the story's language or
region, or a cheap content key such as the first LSH band) and give each partition its own table,
accepting that copies across shards are missed; or split the stage into a stateless part (boilerplate
and sketches, which is most of the CPU, parallel over many partitions) feeding a single-partition
matcher that only compares sketches.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import logging
import re
import struct
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
from datasketch import MinHash

from marsad.records import Document, parse_time
from processors.boilerplate import StorySentence, story_sentences
from processors.normalize import normalize

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
# A run b adds is substantive with this many words a never used (or a new number or cue verb).
MIN_NEW_WORDS = 4
MAX_CANDIDATES = 32
# Published times later than arrival plus this are not believed: one mis-dated article must not
# expire everything else.
CLOCK_SKEW = 86400.0
DEFAULT_MAX_DOCUMENTS = 200_000

# Arabic-Indic digits and hamza seats (مسؤول/مسئول) vary between sites without changing a word.
_FOLD = str.maketrans({**{c: str(i % 10) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹")},
                       "ؤ": "و", "ئ": "ي", "ء": None})
_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_]+")
_CONJ = ("و", "ف")
_ARTICLE = ("بال", "كال", "فال", "وال", "لل", "ال")
_DATE_LIKE = re.compile(r"^(1[89]|20)\d\d$|^\d{1,2}[:/.]\d{1,2}([:/.]\d{2,4})?$|^\d{4}[/.]\d{1,2}[/.]\d{1,2}$")
# Normalised and stemmed like the text. Function words never make an addition substantive.
_STOPWORDS = frozenset(_s for _s in """
في من علي الي عن ان او ثم حتي مع بين بعد قبل عند منذ خلال حيث كما لكن بل اذا اذ لم لن لا ما ماذا
هذا هذه هذان ذلك تلك هولاء اولئك هنا هناك الذي التي الذين اللذين اللتين اللواتي
هو هي هم هن انا نحن انت انتم كان كانت يكون تكون كانوا قد لقد سوف كل بعض غير اي ايضا فقط
اليوم امس غدا الان حاليا وقت يوم حول نحو ضد دون عبر لدي لدى له لها لهم به بها بهم فيه فيها منه منها
عليه عليها اليه اليها عنه عنها انه انها بان لان كي وقد فقد ولم ولا وما
""".split())
# Verbs of statements and events: a new one is news even in a short addition ("ونفت الوزارة ذلك").
_CUES = frozenset(_s for _s in """
قال قالت اكد اكدت اعلن اعلنت نفي نفت صرح صرحت كشف كشفت حذر حذرت اتهم اتهمت طالب طالبت دعا دعت
قرر قررت اوضح اوضحت افاد افادت ذكر ذكرت رفض رفضت نقل اعترف اعترفت تبني تبنت هدد هددت
قتل قتلت اصيب اصيبت ارتفع ارتفعت بلغ بلغت سقط سقطت انفجر استهدف استهدفت اندلع اندلعت
اوقف اوقفت اعتقل اعتقلت سيطر سيطرت انسحب انسحبت هاجم هاجمت قصف قصفت توفي توفيت استقال استقالت
""".split())

_VALUE_VERSION = 1
_HEADER = struct.Struct("<BqIQHH")  # version, time, arrival number, exact hash, #shingles, #words


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """Light stemming so "والحكومة" and "الحكومة" are one word; never below two letters."""
    if len(word) > 3 and word[0] in _CONJ:
        word = word[1:]
    for article in _ARTICLE:
        if word.startswith(article) and len(word) - len(article) >= 2:
            return word[len(article):]
    return word


def _is_number(token: str) -> bool:
    return token[0].isdigit()


def _fp16(value: int) -> int:
    return value & 0xFFFF


@dataclass(frozen=True)
class Sketch:
    """What deduplication needs of one document: its words with sentence offsets, and the
    hashes derived from them."""

    words: tuple[str, ...]
    sentence_of: tuple[int, ...]  # index into sentences, per word
    sentences: tuple[tuple[int, int], ...]  # offsets into the document text
    shingles: tuple[int, ...]  # 32-bit, shingle i starts at word i
    exact: int
    bands: tuple[int, ...] = ()

    def word_prints(self) -> set[int]:
        return {_fp16(zlib.crc32(w.encode())) for w in self.words}


def _story(doc: Document) -> list[StorySentence]:
    sentences = story_sentences(doc.text, doc.title)
    if not sentences:
        # All furniture (or only a headline): match on what there is.
        sentences = [StorySentence(0, len(doc.text), normalize(doc.text))]
    return sentences


def sketch(doc: Document) -> Sketch:
    words: list[str] = []
    sentence_of: list[int] = []
    sentences: list[tuple[int, int]] = []
    for sentence in _story(doc):
        tokens = _TOKEN.findall(sentence.norm.translate(_FOLD).lower())
        if not tokens:
            continue
        index = len(sentences)
        sentences.append((sentence.start, sentence.end))
        pending = ""
        for token in tokens:
            # "و أضاف" and "وأضاف" are the same word, however the site spaced it.
            if token in _CONJ and not pending:
                pending = token
                continue
            words.append(_stem(pending + token) if not _is_number(token) else token)
            sentence_of.append(index)
            pending = ""
    joined = [" ".join(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))]
    shingles = tuple(zlib.crc32(s.encode()) for s in joined) if words else ()
    exact = int.from_bytes(hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest(), "little")
    return Sketch(tuple(words), tuple(sentence_of), tuple(sentences), shingles, exact)


@dataclass(frozen=True)
class _Remembered:
    """A remembered document as stored in ``state`` (decoded)."""

    at: float
    seq: int
    exact: int
    bands: tuple[int, ...]
    shingles: frozenset[int]  # 16-bit fingerprints
    words: frozenset[int]  # 16-bit fingerprints

    def encode(self) -> str:
        shingles, words = sorted(self.shingles), sorted(self.words)
        packed = (_HEADER.pack(_VALUE_VERSION, int(self.at), self.seq, self.exact, len(shingles),
                               len(words))
                  + array("I", self.bands).tobytes() + array("H", shingles).tobytes()
                  + array("H", words).tobytes())
        return base64.b64encode(packed).decode("ascii")

    @classmethod
    def decode(cls, value: Any) -> _Remembered:
        raw = base64.b64decode(value)
        version, at, seq, exact, n_shingles, n_words = _HEADER.unpack_from(raw)
        if version != _VALUE_VERSION:
            raise ValueError(f"unknown dedup record version {version}")
        offset = _HEADER.size
        bands = array("I", raw[offset:offset + 4 * BANDS])
        offset += 4 * BANDS
        shingles = array("H", raw[offset:offset + 2 * n_shingles])
        offset += 2 * n_shingles
        words = array("H", raw[offset:offset + 2 * n_words])
        return cls(float(at), seq, exact, tuple(bands), frozenset(shingles), frozenset(words))


@dataclass(frozen=True)
class DedupResult:
    duplicate_of: str | None
    kind: str | None = None  # "exact" or "near" for copies
    # Not a copy, but repeats most of this earlier document; new_sentences are what it adds.
    update_of: str | None = None
    new_sentences: tuple[tuple[int, int], ...] = ()
    sketch: Sketch | None = field(default=None, repr=False, compare=False)

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
    """How much of b a covers, and which of b's sentences add substance to a."""
    n = len(b.words)
    in_a = [_fp16(h) in a.shingles for h in b.shingles]
    covered = [False] * n
    for i, hit in enumerate(in_a):
        if hit:
            for j in range(i, min(n, i + SHINGLE)):
                covered[j] = True
    new: set[int] = set()
    i = 0
    while i < n:
        if covered[i]:
            i += 1
            continue
        j = i
        while j < n and not covered[j]:
            j += 1
        if _substantive(b.words[i:j], a.words):
            new.update(b.sentence_of[i:j])
        i = j
    return _Verdict(sum(covered) / n if n else 0.0, tuple(b.sentences[s] for s in sorted(new)))


def _substantive(run: tuple[str, ...], known: frozenset[int]) -> bool:
    """Whether words b adds to a carry news: a new figure, a new statement or event verb, or
    enough words a never used. Titles reworded by a portal reuse a's words; furniture that
    escaped processors.boilerplate is short; both stay below this."""
    unseen = [w for w in run if _fp16(zlib.crc32(w.encode())) not in known]
    if any(_is_number(w) and not _DATE_LIKE.match(w) for w in unseen):
        return True
    content = [w for w in unseen if not _is_number(w) and w not in _STOPWORDS and len(w) > 2]
    if any(w in _CUES for w in content) and len(content) >= 2:
        return True
    return len(content) >= MIN_NEW_WORDS


class _BandIndex:
    """LSH band key -> slots, in sorted numpy arrays (12 bytes an entry, where a dict of Python
    ints costs ~100) plus a small dict of recent entries merged in batches."""

    MERGE_AT = 4096

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)
        self._slots = np.empty(0, dtype=np.uint32)
        self._recent: dict[int, list[int]] = {}

    def add(self, keys: Iterable[int], slot: int) -> None:
        for key in keys:
            self._recent.setdefault(key, []).append(slot)
        if len(self._recent) >= self.MERGE_AT:
            self.compact(None)

    def lookup(self, keys: list[int]) -> Counter[int]:
        hits: Counter[int] = Counter()
        if len(self._keys):
            query = np.asarray(keys, dtype=np.uint64)
            lo = np.searchsorted(self._keys, query, "left")
            hi = np.searchsorted(self._keys, query, "right")
            for start, end in zip(lo.tolist(), hi.tolist()):
                hits.update(self._slots[start:end].tolist())
        for key in keys:
            hits.update(self._recent.get(key, ()))
        return hits

    def compact(self, renumber: np.ndarray | None) -> None:
        """Merge recent entries; with ``renumber`` (old slot -> new slot, -1 for gone) also drop
        and renumber slots."""
        if self._recent:
            extra = [(k, s) for k, slots in self._recent.items() for s in slots]
            keys = np.concatenate([self._keys, np.fromiter((k for k, _ in extra), np.uint64, len(extra))])
            slots = np.concatenate([self._slots, np.fromiter((s for _, s in extra), np.uint32, len(extra))])
            self._recent = {}
        else:
            keys, slots = self._keys, self._slots
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
    stream, a dict in the CLI); this object only holds a derived index over it.
    """

    def __init__(self, window_seconds: float, max_documents: int = DEFAULT_MAX_DOCUMENTS):
        self.window = window_seconds
        self.max_documents = max_documents
        # Fixed permutations (seed 1): band hashes in a restored table must mean the same thing.
        self._permutations = MinHash(num_perm=BANDS * ROWS, seed=1, scheme="affine32").permutations
        self._state: Mapping[str, Any] | None = None
        self._index = _BandIndex()
        self._ids: list[str | None] = []  # slot -> document id (None once forgotten)
        self._times = array("d")  # slot -> time
        self._by_id: dict[str, int] = {}
        self._expiry: list[tuple[float, int]] = []  # heap of (time, slot)
        self._latest = float("-inf")
        self._next_seq = 0

    # -- the two steps -------------------------------------------------------------------------

    def check(self, doc: Document, state: Mapping[str, Any]) -> DedupResult:
        self._sync(state)
        if doc.id in self._by_id:
            # The same document again (a redelivery after a crash, or sent twice): it was passed
            # on the first time.
            return DedupResult(doc.id, "exact")
        b = sketch(doc)
        b = replace(b, bands=self._bands(b))
        at = self._when(doc)
        exact_key = _exact_key(b.exact)
        hits = self._index.lookup([*_band_keys(b.bands), exact_key])
        slots = sorted(
            (slot for slot in hits
             if self._ids[slot] is not None and abs(at - self._times[slot]) <= self.window),
            key=lambda slot: (-hits[slot], slot),
        )[:MAX_CANDIDATES]
        copies: list[tuple[int, str]] = []
        best_update: tuple[float, int, _Verdict] | None = None
        for slot in slots:
            a = _Remembered.decode(state[self._ids[slot]])
            if a.exact == b.exact:
                copies.append((slot, "exact"))
                continue
            if len(b.words) < MIN_NEAR_WORDS:
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
            return DedupResult(self._ids[slot], kind, sketch=b)
        if best_update is not None:
            _, slot, verdict = best_update
            return DedupResult(None, None, self._ids[slot], verdict.new_sentences, sketch=b)
        return DedupResult(None, sketch=b)

    def remember(self, doc: Document, result: DedupResult, state: MutableMapping[str, Any]) -> None:
        if result.duplicate_of is not None:
            return
        self._sync(state)
        b = result.sketch
        if b is None or not b.bands:
            b = sketch(doc)
            b = replace(b, bands=self._bands(b))
        record = _Remembered(self._when(doc), self._next_seq, b.exact, b.bands,
                             frozenset(_fp16(h) for h in b.shingles), frozenset(b.word_prints()))
        state[doc.id] = record.encode()
        self._add(doc.id, record)
        self._expire(state)

    # -- state -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def index_bytes(self) -> int:
        """Memory of the derived index (numpy arrays and per-slot arrays), for the benchmark."""
        return self._index.nbytes() + self._times.itemsize * len(self._times) + 8 * len(self._ids)

    def _sync(self, state: Mapping[str, Any]) -> None:
        """Rebuild the index when ``state`` is not what it was built from: another mapping, or a
        table restored from its changelog or handed over from another worker."""
        if state is self._state and len(state) == len(self._by_id):
            return
        self._state = state
        self._index = _BandIndex()
        self._ids, self._times, self._by_id = [], array("d"), {}
        self._expiry, self._latest, self._next_seq = [], float("-inf"), 0
        records: list[tuple[int, str, _Remembered]] = []
        for doc_id, value in state.items():
            try:
                record = _Remembered.decode(value)
            except (ValueError, TypeError, struct.error) as exc:
                log.warning("dedup: ignoring unreadable state entry %s (%s)", doc_id, exc)
                continue
            records.append((record.seq, doc_id, record))
        for _, doc_id, record in sorted(records, key=lambda item: item[0]):
            self._add(doc_id, record)
        self._index.compact(None)
        if records:
            log.info("dedup: index rebuilt from %d remembered documents", len(records))

    def _add(self, doc_id: str, record: _Remembered) -> None:
        slot = len(self._ids)
        self._ids.append(doc_id)
        self._times.append(record.at)
        self._by_id[doc_id] = slot
        self._index.add([*_band_keys(record.bands), _exact_key(record.exact)], slot)
        heapq.heappush(self._expiry, (record.at, slot))
        self._latest = max(self._latest, record.at)
        self._next_seq = max(self._next_seq, record.seq + 1)

    def _expire(self, state: MutableMapping[str, Any]) -> None:
        horizon = self._latest - self.window
        forgotten = 0
        while self._expiry and (self._expiry[0][0] < horizon
                                or len(self._by_id) > self.max_documents):
            _, slot = heapq.heappop(self._expiry)
            doc_id = self._ids[slot]
            if doc_id is None:
                continue
            self._ids[slot] = None
            del self._by_id[doc_id]
            state.pop(doc_id, None)
            forgotten += 1
        if forgotten and len(self._by_id) < len(self._ids) // 2:
            self._renumber()

    def _renumber(self) -> None:
        """Drop forgotten slots so per-slot memory follows what is remembered, not history."""
        alive = [slot for slot, doc_id in enumerate(self._ids) if doc_id is not None]
        renumber = np.full(len(self._ids), -1, dtype=np.int64)
        renumber[alive] = np.arange(len(alive))
        self._index.compact(renumber)
        self._ids = [self._ids[slot] for slot in alive]
        self._times = array("d", (self._times[slot] for slot in alive))
        self._by_id = {doc_id: slot for slot, doc_id in enumerate(self._ids) if doc_id is not None}
        self._expiry = [(self._times[slot], slot) for slot in range(len(alive))]
        heapq.heapify(self._expiry)

    def _when(self, doc: Document) -> float:
        """The document's time on the window's clock: its published time, not believed beyond
        arrival plus CLOCK_SKEW (one mis-dated article must not expire everything). An undated
        document counts as arriving now, unless now is beyond the window from the newest
        published time seen: then this is a backfill of old articles and it joins them."""
        published = parse_time(doc.published) if doc.published else None
        arrived = doc.ingested_at or time.time()
        if published is not None:
            return min(published.timestamp(), arrived + CLOCK_SKEW)
        if self._latest != float("-inf") and arrived > self._latest + self.window:
            return self._latest
        return arrived

    def _bands(self, b: Sketch) -> tuple[int, ...]:
        if not b.shingles:
            return (0,) * BANDS
        minhash = MinHash(num_perm=BANDS * ROWS, hashfunc=_identity, permutations=self._permutations,
                          scheme="affine32")
        minhash.update_batch(b.shingles)
        rows = minhash.hashvalues.reshape(BANDS, ROWS)
        return tuple(zlib.crc32(row.tobytes()) for row in rows)


def _identity(value: int) -> int:
    return value


def _band_keys(bands: Iterable[int]) -> list[int]:
    return [(index << 32) | band for index, band in enumerate(bands)]


def _exact_key(exact: int) -> int:
    return (BANDS << 32) | (exact & 0xFFFFFFFF)
