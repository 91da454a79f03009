"""Alerts POSTed as JSON to webhooks: retried with backoff, signed when a secret is configured,
dead-lettered after the last retry, and each alert_id delivered once per URL across restarts.

Deliveries run in a background task per URL, so a slow or dead endpoint never holds up the
alert stream or the other sinks. The alerts waiting in that task's queue are spooled to a file
beside the ledger, so a worker that stops with deliveries outstanding makes them after its
restart.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from ingest.fetch import retry_after_seconds
from ingest.guard import redact_url
from marsad import __version__
from marsad.metrics import SKIPPED_INPUTS
from marsad.records import Alert
from sinks import REMEMBERED, RecentIds

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Marsad-Signature"
# Lines a spool may hold before it is rewritten (when also twice its outstanding alerts).
SPOOL_LINES = 1000
# Sinks processes that can share one data_dir, each with a spool of its own per URL.
SPOOL_SLOTS = 64

# Keeps an alert the sink gave up on (the dead topic); False when it could not.
OnFailure = Callable[[Alert, str, str], Awaitable[bool]]


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` of the body, as GitHub-style webhook receivers verify it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Ledger:
    """Alert ids already delivered to one URL, appended to a file so a restart does not resend.
    The file is rewritten with its most recent ids once it holds about twice as many lines.

    Sinks processes sharing a data_dir append to the same file. Appends and rewrites hold an
    flock on a lock file beside it, and a rewrite starts from the file, not from this process's
    memory, so it keeps the ids the other processes appended."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = path.with_name(path.name + ".lock")
        with self._locked():
            lines = self._read()
            self.ids = RecentIds(lines)
            self._lines = len(lines)
            if self._lines > REMEMBERED:
                self._rewrite()

    def __contains__(self, alert_id: str) -> bool:
        return alert_id in self.ids

    def add(self, alert_id: str) -> None:
        self.ids.add(alert_id)
        with self._locked():
            with self.path.open("a", encoding="utf-8") as out:
                out.write(alert_id + "\n")
            self._lines += 1
            if self._lines > 2 * REMEMBERED:
                self._rewrite()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").split() if self.path.exists() else []

    def _rewrite(self) -> None:
        recent = list(RecentIds(self._read()))
        _replace(self.path, "".join(f"{alert_id}\n" for alert_id in recent))
        self._lines = len(recent)


class _Spool:
    """Alerts accepted for one URL and not yet finished (delivered or dead-lettered): one JSON
    line per accepted alert and a ``{"done": id}`` line when it finishes, rewritten with just
    the outstanding alerts once finished lines dominate.

    Several sinks processes may share a data_dir: each holds a slot of its own (a spool and
    an flock on its lock file for as long as it runs), and a restarted process takes over a free
    slot with what it left outstanding."""

    def __init__(self, state_dir: Path, digest: str):
        state_dir.mkdir(parents=True, exist_ok=True)
        for slot in range(SPOOL_SLOTS):
            lock = (state_dir / f"webhook-{digest}-{slot}.lock").open("a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._lock = lock
            self.path = state_dir / f"webhook-{digest}-{slot}.queue"
            break
        else:
            raise OSError(f"all {SPOOL_SLOTS} webhook spool slots in {state_dir} are taken")
        self._outstanding: dict[str, Alert] = {}
        self._lines = 0

    def outstanding(self, ledger: _Ledger) -> list[Alert]:
        """What the slot's last run left undone, in the order it was accepted."""
        if self.path.exists():
            with self.path.open(encoding="utf-8", errors="replace") as lines:
                for number, line in enumerate(lines, 1):
                    try:
                        data = json.loads(line)
                        if "done" in data:
                            self._outstanding.pop(data["done"], None)
                        else:
                            alert = Alert.from_dict(data)
                            self._outstanding[alert.alert_id] = alert
                    except Exception:  # noqa: BLE001 - a line torn by a crash; the rest counts
                        SKIPPED_INPUTS.labels("broken_spool_line").inc()
                        log.warning("%s:%d: not a spooled alert, ignored", self.path, number)
        for alert_id in [a for a in self._outstanding if a in ledger]:
            del self._outstanding[alert_id]
        self._rewrite()
        return list(self._outstanding.values())

    def accept(self, alert: Alert) -> None:
        self._append(json.dumps(alert.to_dict(), ensure_ascii=False))
        self._outstanding[alert.alert_id] = alert

    def finish(self, alert_id: str) -> None:
        self._outstanding.pop(alert_id, None)
        if self._lines > max(SPOOL_LINES, 2 * len(self._outstanding)):
            self._rewrite()
        else:
            self._append(json.dumps({"done": alert_id}))

    @property
    def outstanding_count(self) -> int:
        return len(self._outstanding)

    def close(self) -> None:
        self._lock.close()

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
        self._lines += 1

    def _rewrite(self) -> None:
        _replace(self.path, "".join(json.dumps(alert.to_dict(), ensure_ascii=False) + "\n"
                                    for alert in self._outstanding.values()))
        self._lines = len(self._outstanding)


def _replace(path: Path, text: str) -> None:
    """Through a new file and a rename: a crash halfway leaves the old file, not half of one."""
    fresh = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


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
        self._spool = _Spool(state_dir, digest)
        self._queue: asyncio.Queue[Alert] = asyncio.Queue()
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        for alert in self._spool.outstanding(self.ledger):
            self._pending.add(alert.alert_id)
            self._queue.put_nowait(alert)
        if self._pending:
            log.warning("webhook %s: %d alerts left undelivered by the last run are queued again",
                        redact_url(url), len(self._pending))

    async def resume(self) -> None:
        """Start delivering what the last run left; call it once the event loop runs."""
        if not self._queue.empty():
            self._ensure_task()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def deliver(self, alert: Alert) -> bool:
        if alert.alert_id in self.ledger or alert.alert_id in self._pending:
            return False
        self._ensure_task()
        self._spool.accept(alert)
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
                    finished = await self._post(session, alert)
                except Exception as exc:  # noqa: BLE001 - e.g. a full disk under the ledger
                    # The task must outlive one bad delivery, or every later alert would wait
                    # in the queue for ever.
                    log.error("webhook %s: alert %s failed: %s: %s", redact_url(self.url),
                              alert.alert_id, type(exc).__name__, exc)
                    finished = await self._give_up(alert, f"{type(exc).__name__}: {exc}")
                finally:
                    self._pending.discard(alert.alert_id)
                    self._queue.task_done()
                if not finished:
                    # Neither delivered nor dead-lettered (the broker is going away with the
                    # worker): it stays in the spool and goes out after the restart.
                    log.warning("webhook %s: alert %s stays in %s for the restart",
                                redact_url(self.url), alert.alert_id, self._spool.path)
                    continue
                try:
                    self._spool.finish(alert.alert_id)
                except OSError as exc:
                    # The alert is finished either way; at worst a restart offers it again,
                    # and the ledger stops a second delivery.
                    log.error("webhook %s: spool: %s", redact_url(self.url), exc)

    async def _post(self, session: aiohttp.ClientSession, alert: Alert) -> bool:
        """Delivers the alert or gives up on it; False if giving up could not keep it."""
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
                        return True
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
        return await self._give_up(alert, reason)

    async def _give_up(self, alert: Alert, reason: str) -> bool:
        try:
            return await self.on_failure(alert, redact_url(self.url), reason)
        except Exception as exc:  # noqa: BLE001 - the broker is gone too
            log.error("webhook %s: alert %s could not be dead-lettered either: %s",
                      redact_url(self.url), alert.alert_id, exc)
            return False

    async def drain(self) -> None:
        """Wait until every queued alert was delivered or given up (tests, batch runs)."""
        await self._queue.join()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        left = self._spool.outstanding_count
        if left:
            log.warning("webhook %s: %d alerts not delivered yet stay in %s and go out after the "
                        "restart", redact_url(self.url), left, self._spool.path)
        self._spool.close()
