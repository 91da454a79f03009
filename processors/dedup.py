"""Deduplication: a document whose normalised text was already seen is a copy of the first one.

State maps a fingerprint to the first copy's id and time; the stream keeps it in a faust table
fed by the single-partition raw topic, so every document meets every earlier one in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from marsad.records import Document
from processors.normalize import normalize


@dataclass(frozen=True)
class DedupResult:
    duplicate_of: str | None
    fingerprint: str


def fingerprint(doc: Document) -> str:
    """Spelling variants, diacritics, tatweel and spacing do not make a new document."""
    return hashlib.sha256(normalize(doc.text).encode()).hexdigest()[:24]


class Deduplicator:
    """Checking and remembering are separate steps so the stream can remember a document only
    after it was forwarded: a crash in between then re-sends it, it never loses it."""

    def __init__(self, window_seconds: float):
        self.window = window_seconds

    def check(self, doc: Document, state: Mapping[str, Any]) -> DedupResult:
        key = fingerprint(doc)
        first = state.get(key)
        at = doc.published_or_ingested().timestamp()
        if first is not None and abs(at - first["at"]) <= self.window:
            return DedupResult(first["id"], key)
        return DedupResult(None, key)

    def remember(self, doc: Document, result: DedupResult, state: MutableMapping[str, Any]) -> None:
        if result.duplicate_of is None:
            state[result.fingerprint] = {"id": doc.id, "at": doc.published_or_ingested().timestamp()}
