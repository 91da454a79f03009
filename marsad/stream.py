"""The faust topology: thin agents that move records between topics and keep state in tables.

    raw (1 partition) --dedup--> unique (keyed by doc id) --claims--> claims (keyed by town)
        --novelty--> alerts (keyed by town) --sinks--> console, JSONL file, webhooks
    anything that cannot be processed --> dead, with the stage and the reason

Where state lives and how it scales (every process is in one consumer group, the app id, and
runs the agents of its roles; ``[broker] partitions`` sets the count of unique, claims, alerts):
- dedup: table ``dedup_documents`` (document id -> compact fingerprint record, see
  processors/dedup.py), fed by the single raw partition, because a document must meet every
  earlier one; one worker at a time owns it (others are standbys). It is
  the one stage that sees all documents, so it does not scale out, and sharding it would mean
  partitioning raw by a fingerprint band instead of by nothing. It costs about 1 ms of CPU per
  document but is serial (each document waits for the broker to take the previous one's output),
  so it bounds the pipeline, more so when it shares its event loop with tagging: give it a
  process of its own (``--role dedup``, as docker-compose.yml does; see ``marsad bench``).
- claims: stateless, ``unique`` is keyed by doc id, so it scales with the partitions of
  ``unique`` (up to one worker per partition). It is the expensive stage (tagging).
- novelty: table ``novelty`` keyed by town, co-partitioned with ``claims`` (keyed by town), so
  each town's history lives on exactly one worker; scales with the number of towns/partitions.
- sinks: consume ``alerts`` (keyed by town) in the same consumer group, so each alert is
  delivered by one worker; the sinks are idempotent on alert_id because delivery is at-least-once.
A table is defined only in processes that run its agent: faust assigns a changelog partition
together with the source partition only when the same processes subscribe to both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, cast

import faust

from marsad import metrics
from marsad.broker import Topics
from marsad.config import Config, parse_duration
from marsad.records import (MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, Alert, Claim, Document,
                            RecordError, dumps, loads, parse_time)
from marsad.tansu import TansuTransport
from processors.pipeline import Pipeline
from sinks import Sink

log = logging.getLogger(__name__)

# The agents a process can run; `marsad run --role` adds "fetch" (feeds and replay) to these.
STAGES = ("dedup", "claims", "novelty", "sinks")
LAG_INTERVAL = 10.0
# The part of a poison message a dead letter carries (see _dead).
DEAD_PAYLOAD_BYTES = 64 * 1024
DEAD_KEY_BYTES = 1024
# A source partition with records waiting and no progress for this many lag ticks is stalled.
STALL_TICKS = 3


class StallDetector:
    """Source partitions whose committed offset has not moved for ``ticks`` observations in a row
    while records wait after it and the worker is idle.

    A saturated worker's commits can trail for tens of seconds (faust commits only once the
    table changelog writes before them are produced), so an offset standing still is a stall
    only when the worker handled nothing since the last observation either."""

    def __init__(self, ticks: int):
        self.ticks = ticks
        self._seen: dict[Hashable, tuple[int, int]] = {}  # partition -> (committed, still ticks)

    def observe(self, partition: Hashable, committed: int, end: int, busy: bool = False) -> bool:
        previous = self._seen.get(partition)
        still = (previous[1] + 1 if previous and previous[0] == committed and end > committed
                 and not busy else 0)
        self._seen[partition] = (committed, still)
        return still >= self.ticks

    def keep(self, partitions: Iterable[Hashable]) -> None:
        """Forget partitions no longer assigned."""
        kept = set(partitions)
        self._seen = {tp: v for tp, v in self._seen.items() if tp in kept}

    def reset(self) -> None:
        self._seen.clear()


@dataclass
class Progress:
    """In-process accounting of records still in flight, so a batch run knows when it is done."""

    documents_done: int = 0
    claims_pending: int = 0
    alerts_pending: int = 0
    alerts: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def bump(self, **deltas: int) -> None:
        for name, delta in deltas.items():
            setattr(self, name, getattr(self, name) + delta)
        self.changed.set()

    def finished(self, documents: int) -> bool:
        return (self.documents_done >= documents and self.claims_pending == 0
                and self.alerts_pending == 0)


class Stream:
    """Builds the faust app for one config and owns what its agents need."""

    def __init__(self, config: Config, bootstrap: str, pipeline: Pipeline | None,
                 sinks: list[Sink], embedded: bool, roles: Iterable[str] = STAGES):
        """``pipeline`` may be None when no role in ``roles`` runs a processor (fetch, sinks)."""
        self.config = config
        self.topics = Topics(config.broker.topic_prefix, config.broker.partitions)
        self.pipeline = pipeline
        self.sinks = sinks
        self.progress = Progress()
        self._lag_labels: set[tuple[str, str]] = set()
        self._stalls = StallDetector(STALL_TICKS)
        # Records this worker's agents took, and the count at the last lag tick: a worker whose
        # count moves is busy, not stalled.
        self._handled = 0
        self._handled_at_tick = 0
        session = parse_duration(config.broker.session_timeout, "broker.session_timeout")
        # faust keeps a folder per app (without creating its parents): under the data dir, not
        # wherever marsad was started.
        datadir = Path(config.service.data_dir) / f"faust-{self.topics.app_id}"
        datadir.parent.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = dict(
            broker=f"kafka://{bootstrap}",
            store="memory://",
            datadir=str(datadir),
            topic_partitions=self.topics.partitions,
            web_enabled=False,
            autodiscover=False,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=session,
            broker_heartbeat_interval=max(1.0, session / 4),
            stream_wait_empty=False,
        )
        if embedded or config.broker.single_record_batches:
            # Tansu answers ListOffsets wrongly for batched records, which makes a restored table
            # miss its last updates; one record per batch avoids it.
            settings["producer_max_batch_size"] = 1
        self.app = faust.App(self.topics.app_id, **settings)
        if embedded or config.broker.single_record_batches:
            # Tansu holds every fetch for its full wait time: see marsad/tansu.py.
            self.app.transport = TansuTransport(self.app.conf.broker_consumer, self.app)
        self._define(set(roles))

    def _topic(self, name: str, partitions: int) -> Any:
        return self.app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                              value_serializer="raw", partitions=partitions)

    def _define(self, roles: set[str]) -> None:
        layout = self.topics.layout()
        raw = self._topic(self.topics.raw, layout[self.topics.raw])
        unique = self._topic(self.topics.unique, layout[self.topics.unique])
        claims = self._topic(self.topics.claims, layout[self.topics.claims])
        alerts = self._topic(self.topics.alerts, layout[self.topics.alerts])
        self.raw_topic, self.dead_topic = raw, self._topic(self.topics.dead, 1)
        # Values are JSON (the app's default serializer): plain dicts from the domain code.
        if "dedup" in roles:
            # Document id -> compact record of a document passed on (processors/dedup.py); a new
            # name because the old "dedup" changelog holds records of another form.
            dedup_table = self.app.Table("dedup_documents", default=None, partitions=1,
                                         key_type=str)
        if "novelty" in roles:
            novelty_table = self.app.Table("novelty", default=None,
                                           partitions=self.topics.partitions, key_type=str)
        if self.pipeline is None and not {"dedup", "claims", "novelty"}.isdisjoint(roles):
            raise ValueError("the dedup, claims and novelty roles need a pipeline")
        # Only the processor agents use it, and for them it is set (checked above).
        pipeline, progress = cast(Pipeline, self.pipeline), self.progress

        async def dedup_agent(stream: Any) -> None:
            async for event in stream.events():
                started = time.perf_counter()
                self._took("dedup")
                try:
                    data = loads(event.value)
                    stamped = isinstance(data, dict) and "ingested_at" not in data
                    if stamped:
                        # From a producer other than marsad's: latency counts from here, and the
                        # stages after this one must see the same time. (A message's timestamp is
                        # the producer's clock, and the embedded broker's were not milliseconds.)
                        data["ingested_at"] = time.time()
                    doc = Document.accept(data)
                    result = pipeline.dedup.check(doc, dedup_table)
                    if result.duplicate_of is not None:
                        metrics.DUPLICATES.labels(result.kind).inc()
                        if result.kind != "redelivered":
                            metrics.SYNDICATED.labels(metrics.syndication_source(doc)).inc()
                        log.info("duplicate %s of %s (%s)", doc.id, result.duplicate_of,
                                 result.kind)
                    else:
                        # Passed on as received, unless stamped here or padded with fields no
                        # stage reads (which could carry it past the message limit).
                        value = (dumps(doc) if stamped or len(event.value) > MAX_DOCUMENT_BYTES
                                 else event.value)
                        if result.update_of is not None:
                            metrics.DEDUP_UPDATES.inc()
                            # Tells the claim stage which sentences are new, unless the offsets
                            # of a document of countless tiny sentences would not fit a message:
                            # then claims reads all of it, and novelty still drops what repeats.
                            annotated = dumps(result.annotate(doc))
                            if len(annotated) <= MAX_RECORD_BYTES:
                                value = annotated
                        # Remembered only once the broker has it: a crash in between re-sends.
                        log.debug("dedup: %s (%s[%s]@%s) passing on", doc.id, event.message.topic,
                                  event.message.partition, event.message.offset)
                        await (await unique.send(key=doc.id.encode(), value=value))
                        pipeline.dedup.remember(doc, result, dedup_table)
                        metrics.DOCUMENTS_OUT.labels("dedup").inc()
                    metrics.DEDUP_REMEMBERED.set(len(pipeline.dedup))
                except Exception as exc:  # noqa: BLE001 - a poison message must not stop the stream
                    await self._dead("dedup", event, exc)
                    progress.bump(documents_done=1)
                    continue
                if result.duplicate_of is not None:
                    progress.bump(documents_done=1)
                _finished("dedup", started)

        async def claims_agent(stream: Any) -> None:
            async for event in stream.events():
                started = time.perf_counter()
                self._took("claims")
                unsent = False  # a claim counted as pending whose send has not returned
                try:
                    doc = Document.from_dict(loads(event.value))
                    extraction = pipeline.claims.analyse(doc)
                    found = extraction.claims
                    log.debug("claims: %s: %d claim(s)", doc.id, len(found))
                    for claim in found:
                        # Counted before the send: novelty may take the claim before it returns.
                        progress.bump(claims_pending=1)
                        unsent = True
                        await claims.send(key=claim.town.id.encode(), value=dumps(claim))
                        unsent = False
                        metrics.CLAIMS.labels(claim.event_type, claim.modality).inc()
                except Exception as exc:  # noqa: BLE001
                    if unsent:
                        progress.bump(claims_pending=-1)
                    await self._dead("claims", event, exc)
                    progress.bump(documents_done=1)
                    continue
                for kind, count in extraction.entities.items():
                    metrics.ENTITIES.labels(kind).inc(count)
                metrics.DOCUMENTS_OUT.labels("claims").inc()
                _finished("claims", started)
                progress.bump(documents_done=1)

        async def novelty_agent(stream: Any) -> None:
            async for event in stream.events():
                started = time.perf_counter()
                self._took("novelty")
                pending = False
                try:
                    claim = Claim.from_dict(loads(event.value))
                    verdict = pipeline.novelty.judge(claim, novelty_table.get(claim.town.id))
                    if verdict.alert is not None:
                        # Counted before the send: the sinks may take the alert before it returns.
                        progress.bump(alerts_pending=1, alerts=1)
                        pending = True
                        # The state moves on only once the alert is on the broker (at-least-once).
                        await (await alerts.send(key=claim.town.id.encode(),
                                                 value=dumps(verdict.alert)))
                    novelty_table[claim.town.id] = verdict.state
                except Exception as exc:  # noqa: BLE001
                    if pending:
                        progress.bump(alerts_pending=-1, alerts=-1)
                    await self._dead("novelty", event, exc)
                    progress.bump(claims_pending=-1)
                    continue
                if verdict.alert is not None:
                    _observe_latency(claim)
                    metrics.ALERTS.labels(claim.town.name_ar, verdict.alert.status).inc()
                    metrics.DOCUMENTS_OUT.labels("novelty").inc()
                metrics.NOVELTY.labels(claim.town.name_ar, verdict.outcome).inc()
                metrics.NOVELTY_TOWNS.labels(claim.town.name_ar).set(len(verdict.state["claims"]))
                _finished("novelty", started)
                progress.bump(claims_pending=-1)

        async def sinks_agent(stream: Any) -> None:
            async for event in stream.events():
                started = time.perf_counter()
                self._took("sinks")
                try:
                    alert = Alert.from_dict(loads(event.value))
                except Exception as exc:  # noqa: BLE001
                    await self._dead("sinks", event, exc)
                    progress.bump(alerts_pending=-1)
                    continue
                for sink in self.sinks:
                    try:
                        delivered = await sink.deliver(alert)
                        metrics.SINK_DELIVERIES.labels(sink.name, "ok" if delivered else "duplicate").inc()
                    except Exception as exc:  # noqa: BLE001 - one broken sink must not block the others
                        metrics.SINK_DELIVERIES.labels(sink.name, "error").inc()
                        metrics.ERRORS.labels("sinks", type(exc).__name__).inc()
                        log.error("sink %s failed for alert %s: %s", sink.name, alert.alert_id, exc)
                        # The offset moves on: the dead topic keeps the alert for this sink.
                        await self.dead_alert(alert, sink.name, f"{type(exc).__name__}: {exc}")
                _finished("sinks", started)
                progress.bump(alerts_pending=-1)

        agents = {"dedup": (dedup_agent, raw), "claims": (claims_agent, unique),
                  "novelty": (novelty_agent, claims), "sinks": (sinks_agent, alerts)}
        for role, (func, topic) in agents.items():
            if role in roles:
                self.app.agent(topic, name=f"marsad.{role}")(func)
        self._sources = {topic.get_topic_name() for role, (_, topic) in agents.items()
                         if role in roles}
        if self._sources:
            self.app.timer(LAG_INTERVAL, name="marsad.lag")(self._measure_lag)

    async def _measure_lag(self, _app: faust.App) -> None:
        """Sets marsad_consumer_lag_messages for this worker's source partitions, and fetches
        again when one of them stalls (see _unstall).

        The end offset comes from ListOffsets LATEST. Tansu answers it with the start of the last
        record batch plus one, so against the embedded broker, with records produced in batches
        (``marsad replay``, other clients), lag reads low; it is clamped at zero. Apache Kafka
        answers it correctly.
        """
        consumer = self.app.consumer
        assigned = {tp for tp in consumer.assignment() if tp.topic in self._sources}
        try:
            ends = await consumer.highwaters(*assigned) if assigned else {}
        except Exception as exc:  # noqa: BLE001 - a rebalance in between; the next tick retries
            log.debug("consumer lag: end offsets unavailable: %s", exc)
            return
        # faust keeps the offset it last committed per partition, read from the broker on
        # assignment; asking the broker again would cost a request per partition and tick. It is
        # private, which the pin of faust-streaming to 0.15 in pyproject.toml makes safe.
        committed = consumer._committed_offset  # type: ignore[attr-defined]
        # Busy: records taken since the last tick, or table changelog writes still waiting to
        # be produced (the producer's buffer, public in faust 0.15).
        busy = self._handled != self._handled_at_tick or self.app.producer.buffer.size > 0
        self._handled_at_tick = self._handled
        current = set()
        stalled = []
        for tp, end in ends.items():
            done = committed.get(tp) or 0
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - done))
            current.add((tp.topic, str(tp.partition)))
            if self._stalls.observe(tp, done, end, busy):
                stalled.append(f"{tp.topic}[{tp.partition}]@{done} ({end - done} waiting)")
        for labels in self._lag_labels - current:  # partitions moved to another worker
            metrics.CONSUMER_LAG.remove(*labels)
        self._lag_labels = current
        self._stalls.keep(ends.keys())
        if stalled:
            await self._unstall(stalled)

    def _took(self, stage: str) -> None:
        metrics.DOCUMENTS_IN.labels(stage).inc()
        self._handled += 1

    async def _unstall(self, stalled: list[str]) -> None:
        """Fetch again from the committed offsets.

        faust 0.15 can drop records that its consumer thread fetched while a rebalance's recovery
        was seeking the stream partitions (seen on restarts with records arriving at that moment):
        the consumer's position is past them, nothing processes them and nothing fetches them
        again. Seeking back to the committed offsets fetches them again; records processed but
        not yet committed come twice, which every stage tolerates (at-least-once).
        """
        metrics.ERRORS.labels("consumer", "stalled").inc()
        log.warning("consumer stalled on %s: fetching again from the committed offsets",
                    ", ".join(stalled))
        try:
            await self.app.consumer.perform_seek()
        except Exception as exc:  # noqa: BLE001 - a rebalance in between; the next ticks retry
            log.warning("consumer stalled: seek failed: %s", exc)
            return
        self._stalls.reset()

    async def _dead(self, stage: str, event: Any, exc: Exception) -> None:
        reason = exc.reason if isinstance(exc, RecordError) else type(exc).__name__
        metrics.ERRORS.labels(stage, reason).inc()
        message = event.message
        log.warning("dead letter from %s (%s[%s]@%s): %s", stage, message.topic,
                    message.partition, message.offset, exc)
        if not isinstance(exc, RecordError):
            log.debug("".join(traceback.format_exception(exc)))
        value = event.value if isinstance(event.value, bytes) else bytes(str(event.value), "utf-8")
        letter = {
            "stage": stage,
            "reason": reason,
            "error": str(exc)[:1000],
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "payload": value[:DEAD_PAYLOAD_BYTES].decode("utf-8", errors="replace"),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if len(value) > DEAD_PAYLOAD_BYTES:
            # A letter must fit the broker's message limit; topic, partition and offset say
            # where the whole message is, for as long as that topic keeps it.
            letter["payload_bytes"] = len(value)
        key = event.key if isinstance(event.key, bytes) else None
        await self._send_letter(stage, reason, key, letter,
                                f"{message.topic}[{message.partition}]@{message.offset}")

    async def dead_alert(self, alert: Alert, where: str, reason: str) -> bool:
        """A sink gave up on an alert: keep it on the dead topic so nothing is lost silently.
        False when the letter could not be written either (the caller must keep the alert)."""
        letter = {"stage": "sinks", "reason": "delivery_failed", "error": f"{where}: {reason}",
                  "payload": json.dumps(alert.to_dict(), ensure_ascii=False),
                  "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return await self._send_letter("sinks", "delivery_failed", alert.alert_id.encode(),
                                       letter, f"alert {alert.alert_id}")

    async def _send_letter(self, stage: str, reason: str, key: bytes | None,
                           letter: dict[str, Any], what: str) -> bool:
        # A key is only there to spread letters over partitions; a huge one must not stop the
        # letter from fitting the message limit.
        key = key[:DEAD_KEY_BYTES] if key else None
        try:
            await self.dead_topic.send(key=key, value=dumps(letter))
        except Exception as exc:  # noqa: BLE001 - the letter is the last resort; say so loudly
            metrics.ERRORS.labels(stage, "dead_letter_failed").inc()
            log.error("could not write the dead letter for %s (%s: %s): %s: %s", what, stage,
                      reason, type(exc).__name__, exc)
            return False
        metrics.DEAD_LETTERS.labels(stage, reason).inc()
        return True

    async def send_documents(self, docs: Iterable[Document]) -> int:
        sent = 0
        for doc in docs:
            await self.raw_topic.send(key=doc.id.encode(), value=dumps(doc))
            sent += 1
        return sent


def _finished(stage: str, started: float) -> None:
    metrics.STAGE_LATENCY.labels(stage).observe(time.perf_counter() - started)
    metrics.LAST_PROCESSED.labels(stage).set(time.time())


def _observe_latency(claim: Claim) -> None:
    now = time.time()
    if claim.ingested_at:
        metrics.INGEST_TO_ALERT.observe(max(0.0, now - claim.ingested_at))
    try:
        published = parse_time(claim.published)
    except RecordError:
        return  # a claim from another producer with an unreadable date: no latency to tell
    if published is not None:
        metrics.PUBLISHED_TO_ALERT.observe(max(0.0, now - published.timestamp()))
