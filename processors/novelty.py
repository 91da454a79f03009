"""Judging whether a claim about a town is new, a repeat of an earlier claim, or background.

The state for one town is a plain JSON-able dict, so the stream keeps it in a faust table keyed
by town (the claims topic is keyed by town too, so one worker owns each town's state).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from marsad.records import Alert, Claim

MAX_SOURCES = 50


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "new", "repeat" or "background"
    alert: Alert | None
    state: dict[str, Any]


def _alert_id(signature: str, first_doc: str) -> str:
    # The first document of an episode is part of the id: a replay gives the same id, while the
    # same kind of event weeks later (a new episode, after the window) is a new alert.
    return hashlib.sha256(f"{signature}|{first_doc}".encode()).hexdigest()[:16]


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
        entry = known.get(signature)
        if entry is not None:
            if claim.doc.id not in entry["sources"] and len(entry["sources"]) < MAX_SOURCES:
                entry = dict(entry, sources=[*entry["sources"], claim.doc.id])
                known[signature] = entry
            return Verdict("repeat", None, {"claims": known})
        alert_id = _alert_id(signature, claim.doc.id)
        related = sorted(
            e["alert_id"] for e in known.values() if e["event_type"] == claim.event_type
        )
        known[signature] = {
            "alert_id": alert_id,
            "event_type": claim.event_type,
            "at": at,
            "sources": [claim.doc.id],
        }
        alert = Alert(alert_id, claim.town, claim, "new", tuple(related))
        return Verdict("new", alert, {"claims": known})


def _claim_time(claim: Claim) -> float:
    from marsad.records import parse_time

    published = parse_time(claim.published)
    return published.timestamp() if published else claim.ingested_at
