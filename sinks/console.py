"""One readable line per alert on the terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from marsad.records import Alert
from sinks import RecentIds


# A news sentence can run to several hundred characters, and one sentence can hold several
# claims: the terminal shows its start, the topic and the JSONL file the whole of it.
SHOWN_CHARS = 280


def _what(alert: Alert) -> str:
    claim = alert.claim
    actors = ", ".join(f"{a.name} ({a.role})" if a.role else a.name for a in claim.actors) or "-"
    said = f" according to {claim.attributed_to.name}" if claim.attributed_to else ""
    status = "" if alert.status == "new" else f" [{alert.status}]"
    return f"{claim.event_type} ({claim.modality}{said}){status} | actors: {actors}"


def format_alert(alert: Alert) -> str:
    claim = alert.claim
    sentence = claim.sentence
    if len(sentence) > SHOWN_CHARS:
        sentence = sentence[:SHOWN_CHARS].rsplit(" ", 1)[0] + " …"
    source = claim.doc.source or claim.doc.url or claim.doc.title or claim.doc.id
    return (
        f"[{alert.raised_at}] {alert.town.name_ar}: {_what(alert)} | source: {source} | «{sentence}»"
    )


class AlertLines:
    """Formats a run of alerts, writing a sentence out once however many claims it holds.

    "Russian and Syrian jets struck البوكمال and الميادين" is several alerts with one sentence;
    the alerts after the first get a short line under it instead of the sentence again.
    """

    def __init__(self) -> None:
        self._sentence: tuple[str, str] | None = None
        self._town = ""

    def line(self, alert: Alert) -> str:
        sentence = (alert.claim.doc.id, alert.claim.sentence)
        same_sentence, same_town = sentence == self._sentence, alert.town.id == self._town
        self._sentence, self._town = sentence, alert.town.id
        if not same_sentence:
            return format_alert(alert)
        return f"    + {_what(alert) if same_town else f'{alert.town.name_ar}: {_what(alert)}'}"


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._seen = RecentIds()
        self._lines = AlertLines()

    async def deliver(self, alert: Alert) -> bool:
        if alert.alert_id in self._seen:
            return False
        self._seen.add(alert.alert_id)
        print(self._lines.line(alert), file=self.stream, flush=True)
        return True

    def close(self) -> None:
        self.stream.flush()
