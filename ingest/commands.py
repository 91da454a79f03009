"""``marsad feeds list | import | remove``: the feeds a service polls and how each is doing.

``import`` adds an OPML file's feeds to the feed state store (``<data_dir>/feeds.sqlite3``), not
to marsad.toml: the config stays the user's file, and a running service picks imported feeds up
within half a minute without a restart. Feeds in ``[[feeds]]`` win over imported ones with the
same name or URL.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

from ingest.guard import redact_text, redact_url
from ingest.opml import OpmlError, read_opml
from ingest.state import FeedState, FeedStore, active_feeds, state_path
from marsad.config import Config, FeedConfig, load_config, parse_duration


def add_feeds_parser(sub: Any) -> None:
    feeds = sub.add_parser("feeds", help="list feeds with their state, import OPML, remove")
    actions = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="each feed's last success, last error, items "
                                              "seen and next poll")
    listing.add_argument("--json", action="store_true", help="one JSON object per feed")
    listing.add_argument("--config")
    listing.set_defaults(func=cmd_list)

    add = actions.add_parser("import", help="add the feeds of an OPML file to the feed store")
    add.add_argument("opml", metavar="FILE.opml")
    add.add_argument("--interval",
                     help=f"poll interval of the imported feeds (default: {FeedConfig.interval});"
                          " given again, it changes the interval of feeds imported before")
    add.add_argument("--any-language", action="store_true",
                     help="keep non-Arabic items too (default: Arabic only)")
    add.add_argument("--config")
    add.set_defaults(func=cmd_import)

    remove = actions.add_parser("remove", help="forget an imported feed and its seen items")
    remove.add_argument("name")
    remove.add_argument("--config")
    remove.set_defaults(func=cmd_remove)


def _config(args: argparse.Namespace) -> Config:
    from marsad import logs

    config = load_config(args.config)
    logs.configure(config.log)
    return config


def cmd_import(args: argparse.Namespace) -> int:
    config = _config(args)
    interval = args.interval or FeedConfig.interval
    parse_duration(interval, "--interval")
    try:
        report = read_opml(args.opml)
    except OpmlError as exc:
        print(f"marsad feeds import: {exc}", file=sys.stderr)
        return 2
    path = state_path(config.service.data_dir)
    added, present, updated, skipped = 0, 0, 0, list(report.skipped)
    with FeedStore(path) as store:
        active = active_feeds(config, store)
        taken_names = {f.name for f in active}
        known = {f.url: f for f in active}
        added_urls: set[str] = set()
        for feed in report.feeds:
            before = known.get(feed.url)
            # Only an explicit --interval changes what an earlier import chose; feeds of the
            # config file are the config's to change.
            if (before is not None and args.interval and before.origin == "opml"
                    and before.interval_text != interval):
                store.ensure(before.name, before.url, interval, before.arabic_only, origin="opml")
                present += 1
                updated += 1
                continue
            if before is not None:
                where = ("imported" if before.origin == "opml" else
                         "in the config file, which sets its interval")
                skipped.append(f"{feed.name}: already present as {before.name!r} ({where})")
                present += 1
                continue
            if feed.url in added_urls:
                skipped.append(f"{feed.name}: the same URL as a feed earlier in this file")
                present += 1
                continue
            name, n = feed.name, 1
            while name in taken_names or store.get(name) is not None:
                n += 1
                name = f"{feed.name} ({n})"
            store.ensure(name, feed.url, interval, not args.any_language, origin="opml")
            taken_names.add(name)
            added_urls.add(feed.url)
            added += 1
    for line in skipped:
        print(f"skipped {redact_text(line)}", file=sys.stderr)
    print(f"imported {added} feeds into {path}"
          + (f", set the interval of {updated} to {interval}" if updated else "")
          + (f", skipped {len(skipped)}" if skipped else "")
          + ("; a running `marsad run` picks them up within 30s" if added or updated else ""),
          file=sys.stderr)
    # Importing the same file again is not an error; a file without usable feeds is.
    return 0 if added or present else 1


def cmd_remove(args: argparse.Namespace) -> int:
    config = _config(args)
    if any(f.name == args.name for f in config.feeds):
        print(f"marsad feeds remove: {args.name!r} is defined in [[feeds]] of "
              f"{config.source or 'the config'}; remove it there", file=sys.stderr)
        return 2
    path = state_path(config.service.data_dir)
    removed = False
    if path.exists():
        with FeedStore(path) as store:
            removed = store.remove(args.name)
    if not removed:
        print(f"marsad feeds remove: no imported feed named {args.name!r}", file=sys.stderr)
        return 1
    print(f"removed {args.name}", file=sys.stderr)
    return 0


def _when(at: float | None, now: float) -> str:
    if not at:
        return "never"
    delta = at - now
    ago = delta < 0
    seconds = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            span = f"{int(seconds // size)}{unit}"
            break
    else:
        span = f"{seconds:.0f}s"
    return f"{span} ago" if ago else f"in {span}"


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds") if at else None


def cmd_list(args: argparse.Namespace) -> int:
    config = _config(args)
    path = state_path(config.service.data_dir)
    store = FeedStore(path) if path.exists() else None
    try:
        feeds = active_feeds(config, store)
        states = {f.name: (store.get(f.name) if store else None) for f in feeds}
    finally:
        if store is not None:
            store.close()
    if not feeds:
        where = f"in {config.source}" if config.source else "in the built-in default config"
        print(f"no feeds {where}: add [[feeds]] to the config or run `marsad feeds import "
              "FILE.opml` (for a service's feeds, pass the --config it runs with)",
              file=sys.stderr)
        return 0
    now = time.time()
    rows: list[dict[str, Any]] = []
    for feed in feeds:
        state = states[feed.name] or FeedState(feed.name, feed.url, feed.interval_text)
        rows.append({
            "name": feed.name,
            "url": redact_url(feed.url),
            "origin": feed.origin,
            "interval": feed.interval_text,
            "arabic_only": feed.arabic_only,
            "last_success": _iso(state.last_success),
            "last_error": redact_text(state.last_error) if state.last_error else None,
            "last_error_at": _iso(state.last_error_at),
            "failures_in_a_row": state.failures,
            "items_seen": state.items_seen,
            "items_emitted": state.items_emitted,
            "items_skipped": state.items_seen - state.items_emitted,
            "last_skip_reason": state.last_skip,
            "next_poll": _iso(state.next_poll),
            "_times": (state.last_success, state.last_error_at, state.next_poll),
        })
    if args.json:
        for row in rows:
            row.pop("_times")
            print(json.dumps(row, ensure_ascii=False))
        return 0
    header = ("NAME", "ORIGIN", "INTERVAL", "LAST SUCCESS", "NEXT POLL", "SEEN", "EMITTED",
              "SKIPPED", "LAST ERROR")
    table = [header]
    for row in rows:
        success, error_at, next_poll = row["_times"]
        error = row["last_error"]
        if error:
            # An error before the last success is history, not the feed's state.
            recovered = "recovered; " if success and error_at and success > error_at else ""
            error = f"{recovered}{_when(error_at, now)}: {error}"
            error = error if len(error) <= 80 else error[:77] + "..."
        next_text = _when(next_poll, now) if next_poll and next_poll > now else (
            "due" if next_poll else "at start")
        # A feed that lists items and sends none says why (an English feed: non_arabic).
        skipped = str(row["items_skipped"]) + (
            f", last {row['last_skip_reason']}" if row["items_skipped"] and row["last_skip_reason"]
            else "")
        table.append((row["name"], row["origin"], row["interval"], _when(success, now),
                      next_text, str(row["items_seen"]), str(row["items_emitted"]), skipped,
                      error or "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    return 0

