"""Where alerts go besides the alerts topic: one small class per destination behind ``Sink``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from marsad.records import Alert

# Delivered alert ids a sink remembers; an older one can only come back through a replay of
# alerts older than this many, which then is delivered again.
REMEMBERED = 100_000


class Sink(Protocol):
    name: str

    async def deliver(self, alert: Alert) -> bool:
        """Hand the alert on; False when it was already delivered (sinks are idempotent)."""

    def close(self) -> None: ...


class RecentIds:
    """The most recent ``limit`` ids, oldest forgotten first: what a sink delivered, bounded so
    a service running for months does not grow with every alert it ever raised."""

    def __init__(self, ids: Iterable[str] = (), limit: int | None = None):
        self.limit = REMEMBERED if limit is None else limit
        self._ids: dict[str, None] = {}
        for alert_id in ids:
            self.add(alert_id)

    def __contains__(self, alert_id: str) -> bool:
        return alert_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def add(self, alert_id: str) -> None:
        self._ids.pop(alert_id, None)
        self._ids[alert_id] = None
        if len(self._ids) > self.limit:
            del self._ids[next(iter(self._ids))]
