"""Alerts appended to a JSON Lines file, each alert_id once even across restarts and redeliveries."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from marsad.metrics import SKIPPED_INPUTS
from marsad.records import Alert

log = logging.getLogger(__name__)


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen = self._existing_ids()
        self._lock = asyncio.Lock()
        self._file = self.path.open("a", encoding="utf-8")
        if not _ends_with_newline(self.path):
            # Start after a line torn by a crash, not glued onto it.
            self._file.write("\n")

    def _existing_ids(self) -> set[str]:
        seen: set[str] = set()
        if not self.path.exists():
            return seen
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    seen.add(json.loads(line)["alert_id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    # A line cut by a crash mid-write: count it, keep the rest of the file.
                    SKIPPED_INPUTS.labels("broken_alert_line").inc()
                    log.warning("%s:%d: not an alert line, ignored", self.path, number)
        return seen

    async def deliver(self, alert: Alert) -> bool:
        async with self._lock:
            if alert.alert_id in self._seen:
                return False
            # fsync waits for the disk, which can take long on a busy volume: in a thread, so
            # the event loop keeps serving the broker meanwhile.
            await asyncio.to_thread(self._append, json.dumps(alert.to_dict(), ensure_ascii=False))
            self._seen.add(alert.alert_id)
            return True

    def _append(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as raw:
        if raw.seek(0, os.SEEK_END) == 0:
            return True
        raw.seek(-1, os.SEEK_END)
        return raw.read(1) == b"\n"
