"""Per-feed state and seen items, persisted in SQLite under ``[service] data_dir``.

SQLite because the service writes while ``marsad feeds list`` and ``marsad feeds import`` run in
other processes (WAL lets them read and write without corrupting each other), and because a crash
between two writes must not lose the seen-items set: items emitted again after a restart are
what this store exists to prevent.

Feeds come from two places: ``[[feeds]]`` in the config (their rows here only hold state) and
``marsad feeds import`` (their rows are the feed definition, ``origin = 'opml'``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from marsad.config import Config, ConfigError, parse_duration

log = logging.getLogger(__name__)

STATE_FILE = "feeds.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    interval TEXT NOT NULL,
    arabic_only INTEGER NOT NULL DEFAULT 1,
    origin TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_success REAL,
    last_error TEXT,
    last_error_at REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    items_seen INTEGER NOT NULL DEFAULT 0,
    items_emitted INTEGER NOT NULL DEFAULT 0,
    next_poll REAL,
    added_at REAL NOT NULL,
    last_skip TEXT
);
CREATE TABLE IF NOT EXISTS seen (
    feed TEXT NOT NULL,
    item TEXT NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (feed, item)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_age ON seen (feed, last_seen);
"""


def state_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / STATE_FILE


@dataclass
class FeedState:
    name: str
    url: str
    interval: str
    arabic_only: bool = True
    origin: str = "config"
    etag: str | None = None
    last_modified: str | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    failures: int = 0
    items_seen: int = 0
    items_emitted: int = 0
    next_poll: float | None = None
    added_at: float = 0.0
    last_skip: str | None = None  # why the last item not sent on was skipped (non_arabic, ...)


_COLUMNS = tuple(FeedState.__dataclass_fields__)


class FeedStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(feeds)")}
        if "last_skip" not in columns:  # a state file written before the column existed
            try:
                self._db.execute("ALTER TABLE feeds ADD COLUMN last_skip TEXT")
            except sqlite3.OperationalError:  # another process added it in the meantime
                pass

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FeedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Feed definitions and state

    def get(self, name: str) -> FeedState | None:
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM feeds WHERE name = ?",
                               (name,)).fetchone()
        return self._state(row) if row else None

    def all(self) -> list[FeedState]:
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM feeds ORDER BY name")
        return [self._state(row) for row in rows]

    @staticmethod
    def _state(row: tuple) -> FeedState:
        state = FeedState(*row)
        state.arabic_only = bool(state.arabic_only)
        return state

    def imported(self) -> list[FeedState]:
        return [s for s in self.all() if s.origin == "opml"]

    def ensure(self, name: str, url: str, interval: str, arabic_only: bool,
               origin: str = "config") -> FeedState:
        """The state row of a feed, created if new; a changed URL starts its HTTP cache afresh."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            current = self.get(name)
            if current is None:
                self._db.execute(
                    "INSERT INTO feeds (name, url, interval, arabic_only, origin, added_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, url, interval, int(arabic_only), origin, time.time()))
            elif (current.url, current.interval, current.arabic_only) != (url, interval, arabic_only):
                same_url = current.url == url
                self._db.execute(
                    "UPDATE feeds SET url = ?, interval = ?, arabic_only = ?, "
                    "etag = CASE WHEN ? THEN etag END, "
                    "last_modified = CASE WHEN ? THEN last_modified END WHERE name = ?",
                    (url, interval, int(arabic_only), same_url, same_url, name))
        state = self.get(name)
        assert state is not None
        return state

    def remove(self, name: str) -> bool:
        """Forget an imported feed and its seen items; config feeds are removed in the config."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute("DELETE FROM feeds WHERE name = ? AND origin = 'opml'",
                                    (name,)).rowcount
            if gone:
                self._db.execute("DELETE FROM seen WHERE feed = ?", (name,))
        return bool(gone)

    def record_success(self, name: str, at: float, next_poll: float, etag: str | None,
                       last_modified: str | None, keep_validators: bool) -> None:
        """``keep_validators``: a 304 answer, which leaves the stored ETag/Last-Modified valid."""
        self._db.execute(
            "UPDATE feeds SET last_success = ?, failures = 0, next_poll = ?, "
            "etag = CASE WHEN ? THEN etag ELSE ? END, "
            "last_modified = CASE WHEN ? THEN last_modified ELSE ? END WHERE name = ?",
            (at, next_poll, keep_validators, etag, keep_validators, last_modified, name))

    def record_failure(self, name: str, at: float, error: str, next_poll: float) -> None:
        self._db.execute(
            "UPDATE feeds SET last_error = ?, last_error_at = ?, failures = failures + 1, "
            "next_poll = ? WHERE name = ?", (error, at, next_poll, name))

    # Seen items

    def unseen(self, feed: str, keys: Iterable[str], now: float) -> set[str]:
        """The keys not seen before; the seen ones are marked as still listed at ``now``."""
        fresh = set()
        with self._db:
            self._db.execute("BEGIN")
            for key in keys:
                touched = self._db.execute(
                    "UPDATE seen SET last_seen = ? WHERE feed = ? AND item = ?",
                    (now, feed, key)).rowcount
                if not touched:
                    fresh.add(key)
        return fresh

    def mark_seen(self, feed: str, key: str, now: float, skipped: str | None = None) -> None:
        """An item handled: sent on, or ``skipped`` for that reason."""
        with self._db:
            self._db.execute("BEGIN")
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO seen (feed, item, last_seen) VALUES (?, ?, ?)",
                (feed, key, now)).rowcount
            self._db.execute(
                "UPDATE feeds SET items_seen = items_seen + ?, items_emitted = items_emitted + ?, "
                "last_skip = coalesce(?, last_skip) WHERE name = ?",
                (inserted, int(skipped is None and inserted), skipped, feed))

    def prune(self, feed: str, keep: int) -> int:
        """Forget all but the ``keep`` most recently listed items of a feed. Items still in the
        feed were just touched by ``unseen``, so only items gone from it are forgotten."""
        return self._db.execute(
            "DELETE FROM seen WHERE feed = ? AND item IN (SELECT item FROM seen WHERE feed = ? "
            "ORDER BY last_seen DESC LIMIT -1 OFFSET ?)", (feed, feed, keep)).rowcount


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    interval: float
    interval_text: str
    arabic_only: bool
    origin: str  # "config" or "opml"


def active_feeds(config: Config, store: FeedStore | None) -> list[Feed]:
    """The config's ``[[feeds]]``, then imported feeds whose name and URL the config does not
    already use (the config wins a clash)."""
    feeds = [Feed(f.name, f.url, parse_duration(f.interval, f"feeds.interval ({f.name})"),
                  f.interval, f.arabic_only, "config") for f in config.feeds]
    names = {f.name for f in feeds}
    urls = {f.url for f in feeds}
    for state in store.imported() if store is not None else []:
        if state.name in names or state.url in urls:
            continue
        try:
            interval = parse_duration(state.interval, f"interval of imported feed {state.name!r}")
        except ConfigError as exc:
            log.warning("skipped imported feed: %s", exc)
            continue
        feeds.append(Feed(state.name, state.url, interval, state.interval, state.arabic_only,
                          "opml"))
    return feeds
