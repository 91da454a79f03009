"""Structured, quiet-by-default logging: one line per event, as text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from marsad.config import LogConfig

# Libraries that narrate every connection and rebalance at INFO; their warnings still show.
_CHATTY = ("faust", "mode", "aiokafka", "kafka", "trafilatura", "urllib3", "httpx")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(config: LogConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = getattr(logging, config.level.upper())
    root.setLevel(level)
    # Libraries speak at INFO only when asked for debug: their rebalances and recoveries are what
    # explains a stalled worker, and too much otherwise.
    chatty = logging.INFO if level <= logging.DEBUG else max(level, logging.WARNING)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(chatty)


def quiet_clients() -> None:
    """While the service shuts its embedded broker down, clients report every dropped connection
    as an error; those are expected then."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
