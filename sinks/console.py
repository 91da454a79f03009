"""One readable line per alert on the terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from marsad.records import Alert
from sinks import RecentIds


# A news sentence can run to several hundred characters, and one sentence can hold several
# claims: the terminal shows its start, the topic and the JSONL file the whole of it.
SHOWN_CHARS = 280


def format_alert(alert: Alert) -> str:
    claim = alert.claim
    sentence = claim.sentence
    if len(sentence) > SHOWN_CHARS:
        sentence = sentence[:SHOWN_CHARS].rsplit(" ", 1)[0] + " …"
    actors = ", ".join(f"{a.name} ({a.role})" if a.role else a.name for a in claim.actors) or "-"
    source = claim.doc.source or claim.doc.url or claim.doc.title or claim.doc.id
    said = f" according to {claim.attributed_to.name}" if claim.attributed_to else ""
    status = "" if alert.status == "new" else f" [{alert.status}]"
    return (
        f"[{alert.raised_at}] {alert.town.name_ar}: {claim.event_type} ({claim.modality}{said})"
        f"{status} | actors: {actors} | source: {source} | «{sentence}»"
    )


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._seen = RecentIds()

    async def deliver(self, alert: Alert) -> bool:
        if alert.alert_id in self._seen:
            return False
        self._seen.add(alert.alert_id)
        print(format_alert(alert), file=self.stream, flush=True)
        return True

    def close(self) -> None:
        self.stream.flush()
