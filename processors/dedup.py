"""Deduplication: a document whose normalised text was already seen is a copy of the first one.

State maps a fingerprint to the first copy's id and time; the stream keeps it in a faust table
fed by the single-partition raw topic, so every document meets every earlier one in order.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
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
    def __init__(self, window_seconds: float):
        self.window = window_seconds

    def check(self, doc: Document, state: MutableMapping[str, Any]) -> DedupResult:
        key = fingerprint(doc)
        at = doc.published_or_ingested().timestamp()
        first = state.get(key)
        if first is not None and first["id"] != doc.id and abs(at - first["at"]) <= self.window:
            return DedupResult(first["id"], key)
        if first is None or first["id"] != doc.id:
            state[key] = {"id": doc.id, "at": at}
        return DedupResult(None, key)
