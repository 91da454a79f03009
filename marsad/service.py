"""Running the topology: the long-lived service (`marsad run`) and the batch mode (`marsad process`).

Both build the same ``Stream``; they differ in where documents come from and when they stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import faust

from marsad import logs, metrics, shutdown
from marsad.broker import (EmbeddedBroker, Topics, broker_state_file, ensure_topics,
                           running_embedded_broker)
from marsad.config import Config, ConfigError, parse_duration, writable_dir, writable_file
from marsad.records import Document
from marsad.stream import STAGES, Stream
from ingest.documents import ReadReport, read_documents
from processors.pipeline import Pipeline
from sinks import Sink
from sinks.console import ConsoleSink
from sinks.jsonl import JsonlSink
from sinks.webhook import WebhookSink

log = logging.getLogger("marsad")

ROLES = ("fetch", *STAGES)
PROCESSORS = {"dedup", "claims", "novelty"}

EMBEDDED_WARNING = (
    "embedded broker on %s keeps every topic and table in memory only: all data is lost when "
    "marsad stops. For a durable deployment set [broker] url = \"kafka://host:9092\"."
)


def _start_broker(config: Config, stack: ExitStack, batch: bool = False) -> str:
    if not config.broker.embedded:
        return config.broker.bootstrap()
    broker = EmbeddedBroker().start()
    stack.callback(broker.stop)
    stack.callback(logs.quiet_clients)
    if not batch:  # a batch run's results are in its output file; nothing else is meant to last
        log.warning(EMBEDDED_WARNING, broker.bootstrap)
    return broker.bootstrap


def _run_worker(stream: Stream, config: Config,
                driver: Callable[[faust.Worker], Coroutine[Any, Any, None]] | None = None
                ) -> BaseException | None:
    """Runs the worker until it stops; returns what crashed it, if something did."""
    worker = _Worker(stream.app, loglevel=config.log.level.upper(), override_logging=False,
                     redirect_stdouts=False, quiet=True)
    worker.spinner = None  # its terminal escapes would garble the alert lines on stdout
    if driver is not None:
        # An app task starts once the app's producer and consumers are up; a bare future on the
        # worker can run first and find no producer to send with.
        async def drive() -> None:
            try:
                await driver(worker)
            except Exception:
                # A stop that comes while documents are being sent closes the producer under
                # them: that is the stop the user asked for, not a crash.
                if not worker.should_stop:
                    raise
                log.info("sending documents cut short by the stop", exc_info=True)

        stream.app.task(drive)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass  # the worker always exits through SystemExit(0); callers decide the exit code
    return stream.app.crash_reason


class _Worker(faust.Worker):
    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        shutdown.resend()

    # The worker's own handlers stop it; the command's exit status and message need to know.
    def _on_sigint(self) -> None:
        shutdown.note(signal.SIGINT)
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        shutdown.note(signal.SIGTERM)
        super()._on_sigterm()


def parse_roles(text: str) -> frozenset[str]:
    """``--role``: "all" or a comma-separated subset of ROLES."""
    roles = {part.strip() for part in text.split(",") if part.strip()}
    if "all" in roles:
        return frozenset(ROLES)
    unknown = roles - set(ROLES)
    if unknown or not roles:
        raise ConfigError(f"--role: expected 'all' or a comma-separated list of "
                          f"{', '.join(ROLES)}; got {text!r}")
    return frozenset(roles)


def run_service(config: Config, roles: frozenset[str] = frozenset(ROLES)) -> int:
    """The long-lived service until Ctrl-C or SIGTERM, running the agents of ``roles`` only:
    "fetch" polls the feeds and replays ``[ingest] replay``, the others are Stream agents."""
    if config.broker.embedded and roles != frozenset(ROLES):
        raise ConfigError("--role: an embedded broker lives inside one process, so splitting "
                          "roles needs a shared broker: set [broker] url = \"kafka://host:port\"")
    if config.broker.embedded and (other := running_embedded_broker(config.service.data_dir)):
        # Two services on one data_dir would share its feed state, ledgers and JSONL file, and
        # `replay` could reach only one of them.
        raise ConfigError(f"another `marsad run` is using {config.service.data_dir} (its broker "
                          f"is at {other}): stop it, or give this one its own [service] data_dir")
    # Checked before anything starts: a path that cannot be written is a configuration error.
    writable_dir(Path(config.service.data_dir), "service.data_dir")
    if config.sinks.jsonl and "sinks" in roles:
        writable_file(Path(config.sinks.jsonl), "sinks.jsonl")
    with ExitStack() as stack:
        # The tagger and gazetteer take memory and start-up time a fetcher or sink never uses.
        pipeline = Pipeline(config) if roles & PROCESSORS else None
        bootstrap = _start_broker(config, stack)
        topics = Topics(config.broker.topic_prefix, config.broker.partitions)
        ensure_topics(bootstrap, topics)
        if config.broker.embedded:
            state = broker_state_file(config.service.data_dir)
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(f"kafka://{bootstrap}\n")
            stack.callback(state.unlink, missing_ok=True)
        sinks: list[Sink] = []
        delivers = "sinks" in roles
        if config.sinks.console and delivers:
            sinks.append(ConsoleSink())
        if config.sinks.jsonl and delivers:
            sinks.append(stack.enter_context(_closing(JsonlSink(config.sinks.jsonl))))
        stream = Stream(config, bootstrap, pipeline, sinks, embedded=config.broker.embedded,
                        roles=roles & set(STAGES))
        for url in config.sinks.webhooks if delivers else ():
            webhook = WebhookSink(
                url, Path(config.service.data_dir), stream.dead_alert,
                secret=config.sinks.webhook_secret, retries=config.sinks.webhook_retries,
                timeout=parse_duration(config.sinks.webhook_timeout, "sinks.webhook_timeout"))
            sinks.append(stack.enter_context(_closing(webhook)))
            stream.app.task(webhook.resume)
        role = "all" if roles == frozenset(ROLES) else ",".join(r for r in ROLES if r in roles)
        port = metrics.serve(config.metrics.port, config.metrics.host, role)
        log.warning("marsad running (%s): broker %s, topics %s.*, towns %s, metrics %s", role,
                    bootstrap, topics.prefix, ", ".join(t.name for t in config.towns),
                    f"http://localhost:{port}/metrics" if port else "off")

        async def feed_documents(_worker: faust.Worker) -> None:
            if config.ingest.replay:
                report = ReadReport()
                sent = await stream.send_documents(read_documents(config.ingest.replay, report))
                log.warning("replayed %d documents from %s", sent, ", ".join(config.ingest.replay))
            from ingest.poller import run_feeds  # slow to import (trafilatura); `run` only

            # Runs until the worker stops, which cancels it (Ctrl-C / SIGTERM).
            await run_feeds(config, stream.send_documents)

        shutdown.hand_over()
        crashed = _run_worker(stream, config, feed_documents if "fetch" in roles else None)
    if crashed is not None:
        # A supervisor restarting on failure must see one.
        log.error("marsad stopped after a crash: %s: %s", type(crashed).__name__, crashed)
        return 1
    log.warning("marsad stopped")
    return 0


class _closing:
    def __init__(self, sink: Sink):
        self.sink = sink

    def __enter__(self) -> Sink:
        return self.sink

    def __exit__(self, *exc: object) -> None:
        self.sink.close()


def process_batch(config: Config, paths: list[str], alerts_out: str,
                  stall_timeout: float = 300.0) -> int:
    """Push documents through the same topology as `run` on a private embedded broker."""
    began = time.monotonic()
    writable_dir(Path(config.service.data_dir), "service.data_dir")
    writable_file(Path(alerts_out), "--alerts-out")
    report = ReadReport()
    docs: list[Document] = list(read_documents(paths, report))
    if not docs:
        print(f"marsad process: no documents to process in {' '.join(paths)}", file=sys.stderr)
        return 1
    config.broker.url = "embedded"
    # One partition per topic: the contract processes documents in the order given, and
    # partitions read side by side would let a later copy of a claim raise its alert first.
    config.broker.partitions = 1
    outcome = {"code": 1}
    with ExitStack() as stack:
        pipeline = Pipeline(config)  # an unknown --town fails here, before FILE is touched
        out = Path(alerts_out)
        out.write_text("", encoding="utf-8")  # a batch run's output holds that run's alerts only
        bootstrap = _start_broker(config, stack, batch=True)
        ensure_topics(bootstrap, Topics(config.broker.topic_prefix, config.broker.partitions))
        sink = stack.enter_context(_closing(JsonlSink(out)))
        stream = Stream(config, bootstrap, pipeline, [sink], embedded=True)
        progress = stream.progress
        total = len(docs)

        async def drive(worker: faust.Worker) -> None:
            started = time.monotonic()
            await stream.send_documents(docs)
            last_change = last_print = time.monotonic()
            seen = -1
            while not progress.finished(total):
                progress.changed.clear()
                try:
                    await asyncio.wait_for(progress.changed.wait(), timeout=1.0)
                except asyncio.TimeoutError:
                    pass
                now = time.monotonic()
                if progress.documents_done != seen:
                    seen, last_change = progress.documents_done, now
                if now - last_print >= 2.0 and sys.stderr.isatty() or now - last_print >= 10.0:
                    last_print = now
                    print(f"processed {progress.documents_done}/{total} documents, "
                          f"{progress.alerts} alerts", file=sys.stderr, flush=True)
                if now - last_change > stall_timeout:
                    print(f"marsad process: no progress for {stall_timeout:.0f}s at "
                          f"{progress.documents_done}/{total} documents; giving up",
                          file=sys.stderr)
                    await worker.stop()
                    return
            elapsed = time.monotonic() - started
            print(f"processed {total} documents in {elapsed:.1f}s ({time.monotonic() - began:.1f}s "
                  f"with start-up): {progress.alerts} alerts "
                  f"written to {out}" + (f", {len(report.skipped)} inputs skipped"
                                         if report.skipped else ""), file=sys.stderr)
            outcome["code"] = 0
            await worker.stop()

        shutdown.hand_over()
        _run_worker(stream, config, drive)
    stopped_by = shutdown.requested()
    if outcome["code"] != 0 and stopped_by is not None:
        print(f"marsad process: stopped by {signal.Signals(stopped_by).name} at "
              f"{progress.documents_done}/{total} documents; {out} holds the alerts raised so far",
              file=sys.stderr)
        return 128 + stopped_by
    return outcome["code"]
