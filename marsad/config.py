"""Configuration: one typed place, loaded from ``marsad.toml`` and ``MARSAD_*`` environment variables.

Every key is optional; the defaults run the service on an embedded broker with the seed files
replayed. Unknown keys and bad values are errors that name the key, because a typo in a
long-lived service's config should fail at start-up, not silently fall back to a default.

Environment variables override the file: ``MARSAD_<SECTION>_<KEY>`` (``MARSAD_BROKER_URL``,
``MARSAD_METRICS_PORT``, ``MARSAD_SINKS_WEBHOOKS`` as a comma-separated list, ...).
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from ingest.guard import parse_allow_hosts, redact_url
from marsad import REPO_ROOT

DEFAULT_TOWN = "البوكمال"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class ConfigError(ValueError):
    """Raised with a message naming the offending key; the CLI prints it as one line."""


def parse_duration(value: str | int | float, key: str, allow_zero: bool = False) -> float:
    """'5m', '14d', '30s' or a number of seconds, to seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ConfigError(f"{key}: expected a duration like '30s', '5m', '14d', got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    return seconds


@dataclass
class BrokerConfig:
    url: str = "embedded"
    topic_prefix: str = "marsad"
    # Partitions of every topic but raw (raw has one: deduplication must see documents in order).
    partitions: int = 1
    session_timeout: str = "8s"
    # Tansu (the embedded broker) answers ListOffsets wrongly for batched records, so restored
    # tables miss updates; one record per producer batch avoids it. Always on when embedded.
    # Also shortens faust's fetch wait, which Tansu sits out in full (marsad/tansu.py).
    single_record_batches: bool = False

    def validate(self) -> None:
        if self.url != "embedded" and not re.fullmatch(
            r"kafka://[\w.\-]+:\d+(,[\w.\-]+:\d+)*", self.url
        ):
            raise ConfigError(
                "broker.url: expected 'embedded' or 'kafka://host:port[,host:port...]', "
                f"got {redact_url(self.url)!r}")
        if not re.fullmatch(r"[A-Za-z0-9._\-]+", self.topic_prefix):
            raise ConfigError(f"broker.topic_prefix: only letters, digits, '.', '_', '-' allowed, got {self.topic_prefix!r}")
        if not 1 <= self.partitions <= 1024:
            raise ConfigError(f"broker.partitions: expected 1..1024, got {self.partitions}")
        parse_duration(self.session_timeout, "broker.session_timeout")

    @property
    def embedded(self) -> bool:
        return self.url == "embedded"

    def bootstrap(self) -> str:
        return self.url.removeprefix("kafka://")


@dataclass
class FeedConfig:
    name: str = ""
    url: str = ""
    interval: str = "5m"
    # Items whose text is not mostly Arabic are skipped (and counted) instead of emitted.
    arabic_only: bool = True

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("feeds.name: required")
        if not re.match(r"^https?://", self.url):
            raise ConfigError(f"feeds.url: feed {self.name!r} needs an http(s) URL, "
                              f"got {redact_url(self.url)!r}")
        parse_duration(self.interval, f"feeds.interval ({self.name})")


@dataclass
class TownConfig:
    name: str = ""
    aliases: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not self.name.strip():
            raise ConfigError("towns.name: required")


@dataclass
class ServiceConfig:
    # Where the service keeps its files: the running broker's address, feed state, alerts.
    data_dir: str = "marsad-data"


@dataclass
class IngestConfig:
    # Files or folders replayed into the raw topic when the service starts (the test stream).
    replay: list[str] = field(default_factory=list)
    # Feed and article fetching (ingest/fetch.py). Addresses that are not public (loopback,
    # private, link-local, metadata, ...) are refused unless allow_private is set or the host is
    # listed in allow_hosts ("host", "host:port", an IP or a CIDR network).
    allow_private: bool = False
    allow_hosts: list[str] = field(default_factory=list)
    user_agent: str = ""  # empty: marsad/<version> (+project URL)
    respect_robots: bool = True
    fetch_articles: bool = True
    connect_timeout: str = "10s"
    read_timeout: str = "30s"
    # One request, redirects included, from start to the last byte: stops slow-drip servers.
    fetch_timeout: str = "60s"
    max_response_bytes: int = 10_000_000
    max_redirects: int = 5
    per_host_concurrency: int = 2
    host_delay: str = "1s"
    max_backoff: str = "6h"
    # Item identities remembered per feed; items still listed in the feed are never forgotten.
    seen_limit: int = 10_000

    def validate(self) -> None:
        for key in ("connect_timeout", "read_timeout", "fetch_timeout", "max_backoff"):
            parse_duration(getattr(self, key), f"ingest.{key}")
        parse_duration(self.host_delay, "ingest.host_delay", allow_zero=True)
        if self.max_response_bytes < 1024:
            raise ConfigError(f"ingest.max_response_bytes: expected at least 1024, got {self.max_response_bytes}")
        if not 0 <= self.max_redirects <= 20:
            raise ConfigError(f"ingest.max_redirects: expected 0..20, got {self.max_redirects}")
        if not 1 <= self.per_host_concurrency <= 64:
            raise ConfigError(f"ingest.per_host_concurrency: expected 1..64, got {self.per_host_concurrency}")
        if self.seen_limit < 100:
            raise ConfigError(f"ingest.seen_limit: expected at least 100, got {self.seen_limit}")
        if any(c in self.user_agent for c in "\r\n"):
            raise ConfigError("ingest.user_agent: must be a single line")
        try:
            parse_allow_hosts(self.allow_hosts)
        except ValueError as exc:
            raise ConfigError(f"ingest.allow_hosts: {exc}") from exc


@dataclass
class SinksConfig:
    jsonl: str = "marsad-data/alerts.jsonl"  # when unset: data_dir/alerts.jsonl
    webhooks: list[str] = field(default_factory=list)
    # When set, every webhook POST carries X-Marsad-Signature: sha256=HMAC(secret, body).
    webhook_secret: str = ""
    webhook_retries: int = 5
    webhook_timeout: str = "10s"
    console: bool = True

    def validate(self) -> None:
        for url in self.webhooks:
            if not re.match(r"^https?://", url):
                raise ConfigError(f"sinks.webhooks: expected http(s) URLs, got {redact_url(url)!r}")
        if len(set(self.webhooks)) < len(self.webhooks):
            # One ledger and spool per URL: a URL listed twice would get every alert twice.
            raise ConfigError("sinks.webhooks: a URL is listed twice")
        if not 0 <= self.webhook_retries <= 20:
            raise ConfigError(f"sinks.webhook_retries: expected 0..20, got {self.webhook_retries}")
        parse_duration(self.webhook_timeout, "sinks.webhook_timeout")


@dataclass
class MetricsConfig:
    port: int = 9108
    host: str = "0.0.0.0"

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"metrics.port: expected 0..65535 (0 = off), got {self.port}")


@dataclass
class NoveltyConfig:
    window: str = "14d"

    def validate(self) -> None:
        parse_duration(self.window, "novelty.window")


@dataclass
class DedupConfig:
    window: str = "7d"

    def validate(self) -> None:
        parse_duration(self.window, "dedup.window")


@dataclass
class NerConfig:
    backend: str = "crf"

    def validate(self) -> None:
        from processors.taggers import BACKENDS

        if self.backend not in BACKENDS:
            raise ConfigError(f"ner.backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")


@dataclass
class LogConfig:
    level: str = "warning"
    format: str = "text"

    def validate(self) -> None:
        if self.level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log.level: expected debug, info, warning or error, got {self.level!r}")
        if self.format not in ("text", "json"):
            raise ConfigError(f"log.format: expected 'text' or 'json', got {self.format!r}")


@dataclass
class Config:
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    feeds: list[FeedConfig] = field(default_factory=list)
    towns: list[TownConfig] = field(
        default_factory=lambda: [TownConfig(DEFAULT_TOWN, ["أبو كمال", "البو كمال"])]
    )
    service: ServiceConfig = field(default_factory=ServiceConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    ner: NerConfig = field(default_factory=NerConfig)
    log: LogConfig = field(default_factory=LogConfig)
    # Where the config file was read from; relative paths in it are taken from the current directory.
    source: str | None = None

    def validate(self) -> Config:
        for f in fields(self):
            value = getattr(self, f.name)
            for item in value if isinstance(value, list) else [value]:
                if hasattr(item, "validate"):
                    item.validate()
        names = [f.name for f in self.feeds]
        if len(names) != len(set(names)):
            raise ConfigError("feeds.name: feed names must be unique")
        return self


def writable_file(path: Path, what: str) -> None:
    """Makes the folder of an output file, or raises ConfigError saying in one line why the file
    cannot be written (checked before any work, and without creating the file)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot create the folder {path.parent}: "
                          f"{exc.strerror or exc}") from None
    if path.is_dir():
        raise ConfigError(f"{what}: {path} is a folder, not a file")
    existed = path.exists()
    try:
        # Opened, not judged by its mode bits: root passes every access check, yet cannot
        # write under /proc or on a read-only mount.
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write {path}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)


def writable_dir(path: Path, what: str) -> None:
    """Makes the folder, or raises ConfigError saying in one line why it cannot be used."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write in {path}: {exc.strerror or exc}") from None


def default_config() -> Config:
    """The built-in default: embedded broker, seeds replayed, البوكمال monitored."""
    return Config(ingest=IngestConfig(replay=[str(REPO_ROOT / "seeds")]))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = get_origin(annotation)
    if isinstance(annotation, type) and is_dataclass(annotation):
        return _build(annotation, value, key)
    if origin is list:
        (item_type,) = get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_type, key) for v in value]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        return value
    if annotation is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a table, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)} - {"source"}
    for key in data:
        if key not in known:
            where = f"[{prefix}] " if prefix else ""
            raise ConfigError(f"{where}unknown key {key!r} (known: {', '.join(sorted(known))})")
    kwargs = {
        key: _coerce(value, hints[key], f"{prefix}.{key}" if prefix else key)
        for key, value in data.items()
    }
    return cls(**kwargs)


def _towns_from_env(raw: str) -> list[dict[str, Any]]:
    towns = [{"name": name.strip()} for name in raw.split(",") if name.strip()]
    if not towns:
        # A service monitoring no town would run quietly and never alert.
        raise ConfigError("MARSAD_TOWNS: expected comma-separated town names, got nothing")
    return towns


def _feeds_from_env(raw: str) -> list[dict[str, Any]]:
    """Feed URLs, each named after its host (host-2, host-3 for more feeds of one host)."""
    feeds: list[dict[str, Any]] = []
    hosts: dict[str, int] = {}
    for url in (u.strip() for u in raw.split(",")):
        if url:
            host = urlsplit(url).hostname or "feed"
            hosts[host] = hosts.get(host, 0) + 1
            feeds.append({"name": host if hosts[host] == 1 else f"{host}-{hosts[host]}", "url": url})
    return feeds


# The lists of tables take a simpler form in the environment (a container's -e): comma-separated
# town names (aliases come from the gazetteer) or feed URLs. Either replaces the file's list.
_LIST_VARIABLES = {"MARSAD_TOWNS": _towns_from_env, "MARSAD_FEEDS": _feeds_from_env}


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """MARSAD_SECTION_KEY=value into {section: {key: value}} with values typed like the fields."""
    out: dict[str, Any] = {}
    sections = {
        f.name: f.type for f in fields(Config) if f.name not in ("feeds", "towns", "source")
    }
    hints = get_type_hints(Config)
    for name, raw in env.items():
        if not name.startswith("MARSAD_") or name == "MARSAD_CONFIG":
            continue
        if name in _LIST_VARIABLES:
            out[name.removeprefix("MARSAD_").lower()] = _LIST_VARIABLES[name](raw)
            continue
        rest = name.removeprefix("MARSAD_").lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"{name}: no such setting (sections: {', '.join(sorted(sections))}; "
                              "and MARSAD_TOWNS, MARSAD_FEEDS)")
        key = rest.removeprefix(section + "_")
        section_hints = get_type_hints(hints[section])
        if key not in section_hints:
            raise ConfigError(f"{name}: unknown key {key!r} in [{section}]")
        wanted = section_hints[key]
        value: Any = raw
        if wanted is int:
            try:
                value = int(raw)
            except ValueError as exc:
                raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from exc
        elif wanted is bool:
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ConfigError(f"{name}: expected true or false, got {raw!r}")
            value = raw.lower() in ("1", "true", "yes")
        elif get_origin(wanted) is list:
            value = [v.strip() for v in raw.split(",") if v.strip()]
        out.setdefault(section, {})[key] = value
    return out


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """The default config, or FILE (or $MARSAD_CONFIG), with MARSAD_* variables on top."""
    env = dict(os.environ if env is None else env)
    path = path or env.get("MARSAD_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{file}: config file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read config: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    for section, values in _env_overrides(env).items():
        if isinstance(values, list):
            data[section] = values
            continue
        current = data.setdefault(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"{section}: expected a table")
        current.update(values)
    config = _build(Config, data, "") if path else default_config()
    if not path:
        config = _merge_defaults(config, data)
    config.source = str(path) if path else None
    sinks = data.get("sinks")
    if not (isinstance(sinks, dict) and "jsonl" in sinks):
        # Unset, the alerts file lives in data_dir: two services with their own data_dir must
        # not share one file (and its memory of which alerts it already holds).
        config.sinks.jsonl = str(Path(config.service.data_dir) / "alerts.jsonl")
    return config.validate()


def _merge_defaults(config: Config, overrides: dict[str, Any]) -> Config:
    """Environment overrides applied on top of the built-in default (not the bare dataclass)."""
    for section, values in overrides.items():
        if isinstance(values, list):
            setattr(config, section, _coerce(values, get_type_hints(Config)[section], section))
            continue
        target = getattr(config, section)
        built = _build(type(target), values, section)
        for key in values:
            setattr(target, key, getattr(built, key))
    return config
