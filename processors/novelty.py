"""Judging whether a claim about a town is new, contradicts an earlier one, repeats one, or is
background.

The state for one town is a plain JSON-able dict, so the stream keeps it in a faust table keyed
by town (the claims topic is keyed by town too, so one worker owns each town's history). Time is
the documents' published time, so a backfill judges claims as a live run would have.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any

from marsad.records import Alert, Claim, believed_time, parse_time
from processors.normalize import normalize

# A town's state is one table value, written to the changelog whole: it must stay far below
# the broker's 1 MB message limit however busy the town and however long its documents' ids.
# 300 claims of ~1 KB (a sketch, 20 source digests, the agents) is ~300 KB.
MAX_CLAIMS = 300
# Measured as ASCII-escaped JSON, whose length bounds the bytes of any JSON encoding of it.
MAX_STATE_BYTES = 600_000
MAX_SOURCES = 20
SKETCH_SIZE = 32
# Share of the smaller sentence's word pairs found in the other: above this, one is a near-copy.
NEAR_COPY = 0.6


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "new", "contradicts", "repeat" or "background"
    alert: Alert | None
    state: dict[str, Any]


def sentence_sketch(sentence: str) -> list[int]:
    """The smallest hashes of the sentence's normalised word pairs: a few hundred bytes that
    still tell a reworded sentence from a copied one."""
    words = normalize(sentence).split()
    pairs = {zlib.crc32(f"{a} {b}".encode()) for a, b in zip(words, words[1:])} or {
        zlib.crc32(w.encode()) for w in words
    }
    return sorted(pairs)[:SKETCH_SIZE]


def _overlap(a: list[int], b: list[int]) -> float:
    if not a or not b:
        return 0.0
    # Both sketches keep the smallest hashes, so compare them below the smaller maximum.
    limit = min(a[-1], b[-1])
    sa = {h for h in a if h <= limit}
    sb = {h for h in b if h <= limit}
    return len(sa & sb) / max(1, min(len(sa), len(sb)))


def source_key(doc_id: str) -> str:
    """What a town's state keeps of a document that made a claim: a 16-character digest of its
    id (ids may be long URLs)."""
    return hashlib.blake2b(doc_id.encode(), digest_size=8).hexdigest()


def _alert_id(signature: str, first_doc: str) -> str:
    # The first document of an episode is part of the id: a replay gives the same id, while the
    # same kind of event weeks later (a new episode, after the window) is a new alert.
    return hashlib.sha256(f"{signature}|{first_doc}".encode()).hexdigest()[:16]


def _claim_time(claim: Claim) -> float:
    published = parse_time(claim.published)
    if published is None:
        return claim.ingested_at
    # A claim dated years ahead would otherwise push every known claim of its town out of the window.
    return believed_time(published, claim.ingested_at) if claim.ingested_at else published.timestamp()


def _contradicted(claim: Claim, known: dict[str, dict[str, Any]]) -> list[str]:
    """Earlier alerts this claim conflicts with: the opposite polarity of the same act, or
    control of the town claimed by a different actor."""
    agents = set(claim.agents())
    polarity = claim.polarity()
    out = []
    for entry in known.values():
        if entry["event_type"] != claim.event_type:
            continue
        same_act = set(entry["agents"]) == agents
        flipped = {entry["polarity"], polarity} == {"positive", "negative"}
        rival_control = (
            claim.event_type == "territory_control"
            and polarity == entry["polarity"] == "positive"
            and agents and entry["agents"] and not agents & set(entry["agents"])
        )
        if (same_act and flipped) or rival_control:
            out.append(entry["alert_id"])
    return sorted(out)


class NoveltyJudge:
    def __init__(self, window_seconds: float):
        self.window = window_seconds

    def judge(self, claim: Claim, state: dict[str, Any] | None) -> Verdict:
        at = _claim_time(claim)
        known: dict[str, dict[str, Any]] = {
            sig: entry
            for sig, entry in (state or {}).get("claims", {}).items()
            if entry["at"] >= at - self.window
        }
        if claim.background:
            return Verdict("background", None, {"claims": known})
        signature = claim.signature()
        sketch = sentence_sketch(claim.sentence)
        source = source_key(claim.doc.id)
        repeated = known.get(signature) or next(
            (e for e in known.values()
             if e["event_type"] == claim.event_type and e["polarity"] == claim.polarity()
             and source not in e["sources"] and _overlap(sketch, e["sketch"]) >= NEAR_COPY),
            None,
        )
        if repeated is not None:
            if source not in repeated["sources"] and len(repeated["sources"]) < MAX_SOURCES:
                repeated["sources"] = [*repeated["sources"], source]
            return Verdict("repeat", None, {"claims": known})
        alert_id = _alert_id(signature, claim.doc.id)
        contradicted = _contradicted(claim, known)
        related = contradicted or sorted(
            e["alert_id"] for e in known.values() if e["event_type"] == claim.event_type
        )
        known[signature] = {
            "alert_id": alert_id,
            "event_type": claim.event_type,
            "agents": list(claim.agents()),
            "polarity": claim.polarity(),
            "at": at,
            "sources": [source],
            "sketch": sketch,
        }
        # The oldest claims go first: they are the next to leave the window anyway. Past the
        # count, a byte bound: claims from other producers may carry long actor names.
        oldest = sorted(known, key=lambda sig: known[sig]["at"])
        drop = max(0, len(known) - MAX_CLAIMS)
        while True:
            for old in oldest[:drop]:
                del known[old]
            oldest = oldest[drop:]
            if len(known) <= 1 or len(json.dumps(known)) <= MAX_STATE_BYTES:
                break
            drop = max(1, len(known) // 10)
        status = "contradicts" if contradicted else "new"
        alert = Alert(alert_id, claim.town, claim, status, tuple(related))
        return Verdict(status, alert, {"claims": known})
