"""marsad: watch Arabic news feeds and alert when a monitored town shows up with a new claim."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marsad import __version__
from marsad.config import Config, ConfigError, TownConfig, load_config, writable_file

if TYPE_CHECKING:
    from marsad.records import Alert

log = logging.getLogger("marsad")
# How long `replay` and `alerts` try to reach a broker before they say they cannot; the service
# itself waits longer, for a broker that starts beside it.
CLIENT_TIMEOUT = 10.0


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _config(args: argparse.Namespace) -> Config:
    from marsad import logs

    config = load_config(getattr(args, "config", None))
    logs.configure(config.log)
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from marsad.service import parse_roles, run_service

    roles = parse_roles(args.role)
    return run_service(_config(args), roles)


def cmd_process(args: argparse.Namespace) -> int:
    from marsad.service import process_batch

    config = _config(args)
    if args.town:
        config.towns = [TownConfig(name=name) for name in args.town]
    return process_batch(config, args.paths, args.alerts_out)


def _bootstrap(args: argparse.Namespace, config: Config) -> str:
    from marsad.broker import refuses_connections, resolve_bootstrap
    from marsad.logs import quiet_clients

    # A broker that is down makes kafka-python log every retry; the command's own one-line
    # error says what matters.
    quiet_clients()
    bootstrap = resolve_bootstrap(args.broker, config.broker, config.service.data_dir)
    # A killed service leaves its broker.url behind: what it points at refuses at once.
    if refuses_connections(bootstrap):
        raise CliError(f"nothing listens at {bootstrap} (connection refused); "
                       "is `marsad run` up, or is --broker right?")
    return bootstrap


def _kafka_call(bootstrap: str, func):  # type: ignore[no-untyped-def]
    from kafka.errors import KafkaError

    try:
        return func()
    except KafkaError as exc:
        raise CliError(f"cannot talk to the broker at {bootstrap} ({exc}); "
                       "is `marsad run` up, or is --broker right?") from exc


def cmd_replay(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer

    from ingest.documents import ReadReport, read_documents
    from marsad.broker import Topics, ensure_topics
    from marsad.records import dumps

    config = _config(args)
    bootstrap = _bootstrap(args, config)
    topics = Topics(config.broker.topic_prefix, config.broker.partitions)
    # Producing to a missing topic would auto-create it with the broker's default partitions.
    ensure_topics(bootstrap, topics, timeout=CLIENT_TIMEOUT)
    topic = topics.raw
    report = ReadReport()
    producer = _kafka_call(bootstrap, lambda: KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, request_timeout_ms=15000,
        bootstrap_timeout_ms=int(CLIENT_TIMEOUT * 1000), client_id="marsad-replay"))
    sent = 0
    try:
        for doc in read_documents(args.paths, report):
            _kafka_call(bootstrap,
                        lambda d=doc: producer.send(topic, key=d.id.encode(), value=dumps(d)))
            sent += 1
        _kafka_call(bootstrap, lambda: producer.flush(timeout=30))
    finally:
        producer.close(timeout=5)
    skipped = f", skipped {len(report.skipped)}" if report.skipped else ""
    print(f"sent {sent} documents to {topic} at {bootstrap}{skipped}", file=sys.stderr)
    return 0 if sent or not report.skipped else 1


def cmd_alerts(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from marsad.broker import Topics
    from sinks.console import AlertLines

    config = _config(args)
    if args.town is not None and not args.town.strip():
        raise CliError("--town: expected a town name, got nothing")
    wanted = _town_ids(args.town, config) if args.town else None
    lines = None if args.json else AlertLines()
    bootstrap = _bootstrap(args, config)
    topic = Topics(config.broker.topic_prefix, config.broker.partitions).alerts
    consumer = _kafka_call(bootstrap, lambda: KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="marsad-alerts",
        consumer_timeout_ms=1000, bootstrap_timeout_ms=int(CLIENT_TIMEOUT * 1000)))
    # The most recent alerts, as `tail` does; with --follow only new ones, unless --last asks for
    # some first (`tail -n N -f`).
    last = None if args.from_beginning else (
        args.last if args.last is not None else (0 if args.follow else 20))
    # A town's last N alerts may be older than the last N of all: read the topic from its start
    # and keep the town's last N.
    keep = last if wanted is not None and last else 0
    sift = keep > 0
    printed = 0

    def show(data: dict[str, Any], alert: Alert) -> None:
        nonlocal printed
        print(json.dumps(data, ensure_ascii=False) if lines is None else lines.line(alert),
              flush=True)
        printed += 1

    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise CliError(f"topic {topic} does not exist at {bootstrap}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        starts = consumer.beginning_offsets(assigned)
        for tp in assigned:
            if last is None or sift:
                consumer.seek(tp, starts[tp])
            else:
                consumer.seek(tp, max(starts[tp], ends[tp] - last))
        past: list[tuple[dict[str, Any], Alert]] = []  # the town's alerts before the command ran
        idle_since = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    idle_since = time.monotonic()
                    read = _read_alert(record.value)
                    if read is None or (wanted is not None and read[1].town.id not in wanted):
                        continue
                    if sift and record.offset < ends[tp]:
                        past.append(read)
                    else:
                        show(*read)
            caught_up = (all(consumer.position(tp) >= ends[tp] for tp in assigned)
                         or time.monotonic() - idle_since > 3)
            if sift and caught_up:
                past.sort(key=lambda read: read[1].raised_at)
                for read in past[-keep:]:
                    show(*read)
                sift = False
            if not args.follow and caught_up:
                if not printed:
                    print(_no_alerts(args, config, topic, sum(ends.values()) - sum(starts.values())),
                          file=sys.stderr)
                return 0
    finally:
        consumer.close()


def _no_alerts(args: argparse.Namespace, config: Config, topic: str, held: int) -> str:
    """What an empty answer means: none yet, none for that town, or a broker that forgot them."""
    if args.last == 0:
        return f"marsad alerts: --last 0 asks for none of the {held} alerts on {topic}"
    what = f"no alerts for {args.town}" if args.town else "no alerts"
    message = f"marsad alerts: {what} on {topic}"
    if held == 0 and config.broker.embedded and not args.broker:
        message += (" (the embedded broker starts empty at every `marsad run`: alerts of earlier "
                    f"runs are in {config.sinks.jsonl})" if config.sinks.jsonl else
                    " (the embedded broker starts empty at every `marsad run`)")
    return message


def _town_ids(name: str, config: Config) -> set[str]:
    """The ids of the town ``--town`` names, resolved as `process --town` and the service do:
    any spelling of its Arabic name, a configured alias, its English name or its id."""
    from processors.gazetteer import Gazetteer, MonitoredTowns

    gazetteer = Gazetteer.default()
    monitored = MonitoredTowns(gazetteer, [(t.name, list(t.aliases)) for t in config.towns])
    places = monitored.lookup(name) or gazetteer.lookup(name)
    if not places:
        raise gazetteer.unknown(name)
    return {place.id for place in places}


def _read_alert(raw: bytes) -> tuple[dict[str, Any], Alert] | None:
    """One record of the alerts topic as JSON and as an Alert; None, with a warning, if it is not
    one (anyone can write to the topic)."""
    from marsad.records import Alert

    try:
        data = json.loads(raw)
        return data, Alert.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - one bad record is skipped
        log.warning("alerts: skipped a message that is not an alert (%s: %s)",
                    type(exc).__name__, exc)
        return None


def cmd_dedup(args: argparse.Namespace) -> int:
    from collections import Counter

    from ingest.documents import ReadReport, read_documents
    from marsad.config import parse_duration
    from processors.dedup import Deduplicator

    config = _config(args)
    # The stream stage's class and window; the state is a dict instead of its faust table.
    dedup = Deduplicator(parse_duration(config.dedup.window, "dedup.window"))
    state: dict = {}
    report = ReadReport()
    out = Path(args.out)
    writable_file(out, "--out")
    count = updates = 0
    copies: Counter[str] = Counter()
    with ExitStack() as stack:
        lines = None  # opened with the first document: nothing readable leaves FILE alone
        for doc in read_documents(args.paths, report):
            if lines is None:
                lines = stack.enter_context(out.open("w", encoding="utf-8"))
            result = dedup.check(doc, state)
            dedup.remember(doc, result, state)
            count += 1
            if result.duplicate_of is not None:
                copies[result.kind or "exact"] += 1
            updates += result.update_of is not None
            lines.write(json.dumps({"id": doc.id, "duplicate_of": result.duplicate_of},
                                   ensure_ascii=False) + "\n")
    if not count and not report.skipped:
        out.write_text("", encoding="utf-8")  # no documents at all: an empty answer
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(copies.items()))
    skipped = f", {len(report.skipped)} inputs skipped" if report.skipped else ""
    print(f"{count} documents, {sum(copies.values())} duplicates ({kinds or 'none'}), "
          f"{updates} updates of an earlier one passed on, written to {out}{skipped}",
          file=sys.stderr)
    return 0 if count or not report.skipped else 1


def cmd_ner(args: argparse.Namespace) -> int:
    from processors.ner import ConllError, entity_scores, format_scores, read_conll
    from processors.taggers import load_tagger

    config = _config(args)
    tagger = load_tagger(config.ner.backend)
    if tagger is None:
        raise CliError("[ner] backend is 'none'; choose 'crf' or 'camel'")
    try:
        sentences = read_conll(args.conll)
    except ConllError as exc:
        raise CliError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.conll}: {exc}") from exc
    out = Path(args.out)
    writable_file(out, "--out")
    predicted: list[list[str]] = []
    started = last = time.monotonic()
    # Whole runs of sentences at once: the tagger's second pass uses how neighbouring sentences
    # labelled the same word, which one sentence at a time would lose.
    chunk = 200
    with out.open("w", encoding="utf-8") as lines:
        for first in range(0, len(sentences), chunk):
            batch = [[token for token, _ in sentence] for sentence in sentences[first:first + chunk]]
            for tokens, tags in zip(batch, tagger.tag_sentences(batch)):
                lines.writelines(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags))
                lines.write("\n")
                predicted.append(tags)
            if time.monotonic() - last > 5:
                last = time.monotonic()
                print(f"tagged {len(predicted)}/{len(sentences)} sentences", file=sys.stderr)
    n_tokens = sum(len(s) for s in sentences)
    elapsed = time.monotonic() - started
    print(f"tagged {len(sentences)} sentences, {n_tokens} tokens in {elapsed:.1f}s -> {out}",
          file=sys.stderr)
    # Only sentences tagged in full are scored: reading a missing tag as O would count every
    # entity the tagger finds there as a false positive.
    scored = [i for i, sentence in enumerate(sentences) if all(tag for _, tag in sentence)]
    partly = sum(1 for sentence in sentences if any(tag for _, tag in sentence)) - len(scored)
    if partly:
        print(f"not scored: {partly} sentences have lines without a gold tag", file=sys.stderr)
    if scored:
        gold = [[tag or "O" for _, tag in sentences[i]] for i in scored]
        print(format_scores(entity_scores(gold, [predicted[i] for i in scored])))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from marsad.bench import BenchError, run_bench

    try:
        return run_bench(args)
    except BenchError as exc:
        raise CliError(str(exc)) from exc


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of alerts, 0 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marsad", description=__doc__)
    parser.add_argument("--version", action="version", version=f"marsad {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the service (embedded broker and seed replay by default)")
    run.add_argument("--config", help="marsad.toml (default: built-in, or $MARSAD_CONFIG)")
    run.add_argument("--role", default="all", metavar="ROLES",
                     help="what this process runs: all (default) or a comma-separated list of "
                          "fetch, dedup, claims, novelty, sinks; processes with one topic prefix "
                          "share the work in one consumer group")
    run.set_defaults(func=cmd_run)

    replay = sub.add_parser("replay", help="put documents into the raw topic of a running service")
    replay.add_argument("paths", nargs="+", metavar="PATH", help=".txt seed files, folders, JSONL")
    replay.add_argument("--broker", help="kafka://host:port (default: the running service's)")
    replay.add_argument("--config")
    replay.set_defaults(func=cmd_replay)

    process = sub.add_parser("process", help="batch: documents through the topology into a file")
    process.add_argument("paths", nargs="+", metavar="PATH")
    process.add_argument("--alerts-out", required=True, metavar="FILE")
    process.add_argument("--town", action="append", metavar="NAME",
                         help="monitor this town instead of the configured ones (repeatable)")
    process.add_argument("--config")
    process.set_defaults(func=cmd_process)

    alerts = sub.add_parser("alerts", help="print alerts from the alert topic")
    alerts.add_argument("--town", metavar="NAME",
                        help="only alerts about this town (its N most recent, however old)")
    alerts.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    start = alerts.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    start.add_argument("--last", type=_count, metavar="N",
                       help="start at the N most recent alerts per partition (default: 20, or "
                            "none with --follow, like tail -f)")
    alerts.add_argument("--json", action="store_true", help="JSON lines instead of text")
    alerts.add_argument("--broker")
    alerts.add_argument("--config")
    alerts.set_defaults(func=cmd_alerts)

    dedup = sub.add_parser("dedup", help="deduplicate documents in order, one JSON line each")
    dedup.add_argument("paths", nargs="+", metavar="PATH")
    dedup.add_argument("--out", required=True, metavar="FILE")
    dedup.add_argument("--config")
    dedup.set_defaults(func=cmd_dedup)

    ner = sub.add_parser("ner", help="tag a CoNLL file with the configured NER backend")
    ner.add_argument("--conll", required=True, metavar="IN",
                     help="one token per line, optional gold tag; blank line = sentence break")
    ner.add_argument("--out", required=True, metavar="OUT", help="token<TAB>predicted tag lines")
    ner.add_argument("--config")
    ner.set_defaults(func=cmd_ner)

    bench = sub.add_parser("bench", help="end-to-end throughput and latency through a broker")
    bench.add_argument("--docs", type=int, default=2000, metavar="N",
                       help="documents to send (default 2000)")
    bench.add_argument("--corpus", metavar="PATH", help="JSONL documents, optionally .gz "
                       "(default ../shared/data/corpus/jawharafm-ant-v1.1.jsonl.gz)")
    bench.add_argument("--workers", type=int, choices=(1, 2),
                       help="1: one process runs every stage; 2: dedup in one, claims, novelty "
                            "and sinks in the other, as in docker-compose.yml (default: 1, then 2)")
    bench.add_argument("--layout", nargs="+", metavar="ROLES",
                       help="instead of --workers, one worker process per ROLES, e.g. "
                            "--layout dedup,claims,novelty,sinks dedup,claims,novelty,sinks")
    bench.add_argument("--rate", type=float, metavar="R",
                       help="send R documents per second (default: as fast as possible)")
    bench.add_argument("--synthetic", type=float, default=0.05, metavar="SHARE",
                       help="share of synthetic claim documents built from the seeds, so that "
                            "alerts flow (default 0.05)")
    bench.add_argument("--json", action="store_true", help="one JSON object per run instead "
                       "of the table")
    bench.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    bench.set_defaults(func=cmd_bench)

    from ingest.commands import add_feeds_parser

    add_feeds_parser(sub)
    return parser


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser that ``args`` were parsed by, e.g. the one of `feeds import`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _innermost(action.choices[chosen], args)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Said by the command's own parser, so the usage shown is the command's.
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ("run", "process"):
        from marsad import shutdown

        # Before the slow imports: a stop may come at any moment of start-up.
        shutdown.install(clean=args.command == "run")
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`marsad alerts | head`): nothing more to say, and nowhere to say
        # it; stdout goes to /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _dispatch(args: argparse.Namespace) -> int:
    from marsad.broker import BrokerError
    from processors.gazetteer import UnknownPlace
    from processors.taggers import TaggerUnavailable

    try:
        return int(args.func(args))
    except (ConfigError, CliError, BrokerError, UnknownPlace, TaggerUnavailable) as exc:
        print(f"marsad {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
