"""Alerts POSTed as JSON to webhooks: retried with backoff, signed when a secret is configured,
dead-lettered after the last retry, and each alert_id delivered once per URL across restarts.

Deliveries run in a background task per URL, so a slow or dead endpoint never holds up the
alert stream or the other sinks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from ingest.fetch import retry_after_seconds
from ingest.guard import redact_url
from marsad import __version__
from marsad.records import Alert

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Marsad-Signature"
# Delivered ids kept per URL; older ones can only come back through a replay older than this.
REMEMBERED = 100_000

OnFailure = Callable[[Alert, str, str], Awaitable[None]]


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` of the body, as GitHub-style webhook receivers verify it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Ledger:
    """Alert ids already delivered to one URL, appended to a file so a restart does not resend."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text(encoding="utf-8").split() if path.exists() else []
        self.ids = dict.fromkeys(lines[-REMEMBERED:])
        if len(lines) > REMEMBERED:
            path.write_text("\n".join(self.ids) + "\n", encoding="utf-8")

    def __contains__(self, alert_id: str) -> bool:
        return alert_id in self.ids

    def add(self, alert_id: str) -> None:
        self.ids[alert_id] = None
        with self.path.open("a", encoding="utf-8") as out:
            out.write(alert_id + "\n")
        if len(self.ids) > REMEMBERED:
            del self.ids[next(iter(self.ids))]


class WebhookSink:
    name = "webhook"

    def __init__(self, url: str, state_dir: Path, on_failure: OnFailure, secret: str = "",
                 retries: int = 5, timeout: float = 10.0, backoff: float = 1.0):
        self.url = url
        self.secret = secret
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.on_failure = on_failure
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        self.ledger = _Ledger(state_dir / f"webhook-{digest}.delivered")
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def deliver(self, alert: Alert) -> bool:
        if alert.alert_id in self.ledger or alert.alert_id in self._pending:
            return False
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        self._pending.add(alert.alert_id)
        await self._queue.put(alert)
        return True

    async def _run(self) -> None:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": f"marsad/{__version__}", "Content-Type": "application/json"},
        ) as session:
            while True:
                alert = await self._queue.get()
                try:
                    await self._post(session, alert)
                except Exception as exc:  # noqa: BLE001 - e.g. a full disk under the ledger
                    # The task must outlive one bad delivery, or every later alert would wait
                    # in the queue for ever.
                    log.error("webhook %s: alert %s failed: %s: %s", redact_url(self.url),
                              alert.alert_id, type(exc).__name__, exc)
                    await self._give_up(alert, f"{type(exc).__name__}: {exc}")
                finally:
                    self._pending.discard(alert.alert_id)
                    self._queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, alert: Alert) -> None:
        body = json.dumps(alert.to_dict(), ensure_ascii=False).encode()
        headers = {"X-Marsad-Alert-Id": alert.alert_id}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        reason = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff * 2**attempt * random.uniform(0.5, 1.5)
            try:
                async with session.post(self.url, data=body, headers=headers) as response:
                    if response.status < 300:
                        self.ledger.add(alert.alert_id)
                        return
                    reason = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status not in (408, 429):
                        break  # the receiver rejects this alert; retrying will not change that
                    wait = retry_after_seconds(response.headers.get("Retry-After")) or wait
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = type(exc).__name__
            if attempt < self.retries:
                log.warning("webhook %s: %s for alert %s, retry %d in %.1fs",
                            redact_url(self.url), reason, alert.alert_id, attempt + 1, wait)
                await asyncio.sleep(min(wait, 300.0))
        log.error("webhook %s: giving up on alert %s after %d attempts (%s)",
                  redact_url(self.url), alert.alert_id, attempt + 1, reason)
        await self._give_up(alert, reason)

    async def _give_up(self, alert: Alert, reason: str) -> None:
        try:
            await self.on_failure(alert, redact_url(self.url), reason)
        except Exception as exc:  # noqa: BLE001 - the broker is gone too; the log is all that is left
            log.error("webhook %s: alert %s could not be dead-lettered either: %s",
                      redact_url(self.url), alert.alert_id, exc)

    async def drain(self) -> None:
        """Wait until every queued alert was delivered or given up (tests, batch runs)."""
        await self._queue.join()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
