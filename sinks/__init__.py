"""Where alerts go besides the alerts topic: one small class per destination behind ``Sink``."""

from __future__ import annotations

from typing import Protocol

from marsad.records import Alert


class Sink(Protocol):
    name: str

    async def deliver(self, alert: Alert) -> bool:
        """Hand the alert on; False when it was already delivered (sinks are idempotent)."""

    def close(self) -> None: ...
