"""Alerts appended to a JSON Lines file, each alert_id once even across restarts and redeliveries.

The file may be rotated under the running service (logrotate's default create mode, or any
rename): the next alert goes to a new file at the configured path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from marsad.metrics import SKIPPED_INPUTS
from marsad.records import Alert
from sinks import RecentIds

log = logging.getLogger(__name__)


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen = RecentIds(self._existing_ids())
        self._lock = asyncio.Lock()
        self._file = self._open()

    def _open(self) -> TextIO:
        file = self.path.open("a", encoding="utf-8")
        if not _ends_with_newline(self.path):
            # Start after a line torn by a crash, not glued onto it.
            file.write("\n")
        return file

    def _existing_ids(self) -> Iterator[str]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)["alert_id"]
                except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
                    # A line cut by a crash mid-write: count it, keep the rest of the file.
                    SKIPPED_INPUTS.labels("broken_alert_line").inc()
                    log.warning("%s:%d: not an alert line, ignored", self.path, number)

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
        if self._rotated():
            # Opened before the old one is closed: if it cannot be (the new file's owner or
            # mode, a folder there), this alert fails and the next one tries again.
            fresh = self._open()
            self._file.close()
            self._file = fresh
            log.info("%s was rotated: writing to a new file", self.path)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def _rotated(self) -> bool:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._file.fileno())
        return (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino)

    def close(self) -> None:
        self._file.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as raw:
        if raw.seek(0, os.SEEK_END) == 0:
            return True
        raw.seek(-1, os.SEEK_END)
        return raw.read(1) == b"\n"
