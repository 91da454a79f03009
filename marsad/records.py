"""The records that travel between stages, defined once, with the JSON forms of CONTRACT.md.

Every record is a plain dataclass with ``to_dict``/``from_dict``; topics carry them as UTF-8 JSON,
so any Kafka client (not only marsad) can produce documents and read alerts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

MODALITIES = ("asserted", "denied", "planned", "reported")
EVENT_TYPES = (
    "territory_control",
    "air_strike",
    "shelling_missile",
    "armed_clash",
    "explosion",
    "withdrawal",
    "casualties",
    "military_buildup",
    "accusation",
    "humanitarian",
)
NOVELTY_STATUSES = ("new", "contradicts")

log = logging.getLogger(__name__)


class RecordError(ValueError):
    """A message or input line that is not a valid record; the message says which field."""

    reason = "invalid_record"  # the label it is counted under (dead letters, skipped inputs)


class TooLarge(RecordError):
    reason = "too_large"


class EmptyDocument(RecordError):
    """A document whose text is blank: invalid on a topic, and an empty document in a file."""


# Kafka's default message limit is 1 MB (the producers' max_request_size too). A document entering
# marsad may take half of it, leaving room for what stages add on the way (dedup's new-sentence
# offsets); past that it would fail to send at some stage, on every retry. No news article comes
# near: the largest of the 10k corpus articles is 10k characters.
MAX_DOCUMENT_BYTES = 512 * 1024
# A record's value a stage may send: under the producers' 1,000,000-byte request limit with room
# for the key and the batch's headers.
MAX_RECORD_BYTES = 900_000
MAX_ID_CHARS = 512
# Actor ids and names, and actors per claim: a town's novelty history keeps them for every claim.
MAX_NAME_CHARS = 300
MAX_ACTORS = 20


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Published times later than arrival plus this are not believed: one mis-dated article must not
# expire a stage's whole window (deduplication, novelty).
CLOCK_SKEW = 86400.0


def believed_time(published: datetime, arrived: float) -> float:
    """A published time as the windowed stages use it: never beyond arrival plus CLOCK_SKEW."""
    return min(published.timestamp(), arrived + CLOCK_SKEW)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 to an aware datetime; naive times are taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecordError(f"published: not an ISO 8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{key}: expected a string, got {type(value).__name__}")
    try:
        value.encode()
    except UnicodeEncodeError:
        # JSON can carry a lone surrogate ("\ud800") that no stage could send on as UTF-8.
        raise RecordError(f"{key}: not valid Unicode (a lone surrogate)") from None
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = _optional_str(data, key)
    if value is None:
        raise RecordError(f"{key}: required")
    return value


def _number(data: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{key}: expected a number, got {type(value).__name__}")
    return float(value)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RecordError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _spans(value: Any, key: str) -> tuple[tuple[int, int], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(span, list) and len(span) == 2 and all(isinstance(i, int) for i in span)
        for span in value
    ):
        raise RecordError(f"{key}: expected a list of [start, end] offsets")
    return tuple((start, end) for start, end in value)


@dataclass(frozen=True)
class Document:
    text: str
    id: str = ""
    url: str | None = None
    source: str | None = None
    title: str | None = None
    published: str | None = None
    summary: str | None = None
    # Wall-clock time the document entered marsad: the start of ingest-to-alert latency.
    ingested_at: float = 0.0
    # Set by deduplication on copies, so a consumer of the stream can link syndicated stories.
    duplicate_of: str | None = None
    # Where a feed document's text came from: "article" (the linked page) or "feed" (the feed's
    # own content or summary, when the page failed or had no text). None for other inputs.
    text_source: str | None = None
    # Set by deduplication on a document that repeats most of an earlier one but adds news (an
    # update, or another story sharing background): the earlier id, and the [start, end) offsets
    # in ``text`` of the sentences it adds, so later stages can tell what is new.
    update_of: str | None = None
    new_sentences: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def content_id(text: str, title: str | None = None, url: str | None = None) -> str:
        digest = hashlib.sha256(json.dumps([url, title, text], ensure_ascii=False).encode())
        return digest.hexdigest()[:20]

    @classmethod
    def from_dict(cls, data: Any) -> Document:
        if not isinstance(data, dict):
            raise RecordError("document: expected a JSON object")
        text = _optional_str(data, "text")
        if text is None:
            raise RecordError("text: required, must be a string")
        if not text.strip():
            raise EmptyDocument("text: empty document")
        title = _optional_str(data, "title")
        url = _optional_str(data, "url")
        published = _optional_str(data, "published")
        try:
            parse_time(published)
        except RecordError:
            # Feeds do publish dates like 0211-20-16; the article is still news, so it is kept
            # and judged on its arrival time instead.
            log.info("document %s: unreadable published time %r dropped", data.get("id"), published)
            published = None
        doc_id = data.get("id")
        if doc_id is not None and not isinstance(doc_id, (str, int)):
            raise RecordError("id: expected a string")
        if isinstance(doc_id, str):
            _optional_str(data, "id")
        if doc_id is not None:
            if len(str(doc_id)) > MAX_ID_CHARS:
                # Ids are kept in the stages' state (dedup, novelty): they must stay small.
                raise RecordError(f"id: longer than {MAX_ID_CHARS} characters")
        ingested_at = data.get("ingested_at") or time.time()
        if not isinstance(ingested_at, (int, float)):
            raise RecordError("ingested_at: expected epoch seconds")
        return cls(
            text=text,
            id=str(doc_id) if doc_id not in (None, "") else cls.content_id(text, title, url),
            url=url,
            source=_optional_str(data, "source"),
            title=title,
            published=published,
            summary=_optional_str(data, "summary"),
            ingested_at=float(ingested_at),
            duplicate_of=_optional_str(data, "duplicate_of"),
            text_source=_optional_str(data, "text_source"),
            update_of=_optional_str(data, "update_of"),
            new_sentences=_spans(data.get("new_sentences"), "new_sentences"),
        )

    @classmethod
    def accept(cls, data: Any) -> Document:
        """``from_dict`` for a document entering marsad (files, feeds, the raw topic): one that
        would not fit the broker's message limit on its way through the stages is refused."""
        doc = cls.from_dict(data)
        # JSON spends at most 6 bytes on a character (a \u escape) and about 24 on a span: only
        # a document that could be near the limit is serialised to measure it.
        chars = sum(len(value) for value in (doc.text, doc.id, doc.url, doc.source, doc.title,
                                             doc.published, doc.summary, doc.duplicate_of,
                                             doc.text_source, doc.update_of) if value)
        if 6 * chars + 24 * len(doc.new_sentences) + 1024 > MAX_DOCUMENT_BYTES:
            size = len(dumps(doc))
            if size > MAX_DOCUMENT_BYTES:
                raise TooLarge(f"document: {size} bytes of JSON, more than {MAX_DOCUMENT_BYTES}")
        return doc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ref(self) -> DocRef:
        return DocRef(self.id, self.url, self.source, self.title, self.published)

    def published_or_ingested(self) -> datetime:
        """The time novelty windows are measured on: published when known, else arrival."""
        return parse_time(self.published) or datetime.fromtimestamp(
            self.ingested_at or time.time(), timezone.utc
        )


@dataclass(frozen=True)
class DocRef:
    id: str
    url: str | None = None
    source: str | None = None
    title: str | None = None
    published: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> DocRef:
        data = _object(data, "doc")
        return cls(_str(data, "id"), _optional_str(data, "url"), _optional_str(data, "source"),
                   _optional_str(data, "title"), _optional_str(data, "published"))


@dataclass(frozen=True)
class Town:
    id: str
    name_ar: str
    name_en: str | None = None
    lat: float | None = None
    lon: float | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Town:
        data = _object(data, "town")
        lat, lon = data.get("lat"), data.get("lon")
        return cls(_str(data, "id"), _str(data, "name_ar"), _optional_str(data, "name_en"),
                   None if lat is None else _number(data, "lat"),
                   None if lon is None else _number(data, "lon"))


@dataclass(frozen=True)
class Actor:
    id: str
    name: str
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.role is not None:
            out["role"] = self.role
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Actor:
        data = _object(data, "actor")
        actor = cls(id=_str(data, "id"), name=_str(data, "name"), role=_optional_str(data, "role"))
        if max(len(actor.id), len(actor.name)) > MAX_NAME_CHARS:
            raise RecordError(f"actor: id or name longer than {MAX_NAME_CHARS} characters")
        return actor


@dataclass(frozen=True)
class Mention:
    """A span of the original text that names an entity: offsets index the text as published."""

    start: int
    end: int
    surface: str
    kind: str  # "town", "actor" or an NER type (LOC, PERS, ORG, MISC)
    id: str


@dataclass(frozen=True)
class Claim:
    town: Town
    event_type: str
    actors: tuple[Actor, ...]
    attributed_to: Actor | None
    modality: str
    sentence: str
    doc: DocRef
    # Offsets of the sentence in the document text, so the evidence can be located exactly.
    start: int = 0
    end: int = 0
    # Recalled past events ("last year ...") are kept for context but never raise alerts.
    background: bool = False
    published: str | None = None
    ingested_at: float = 0.0

    def agents(self) -> tuple[str, ...]:
        return tuple(sorted({a.id for a in self.actors if a.role == "agent"}))

    def polarity(self) -> str:
        """What the claim says happened: asserted and reported claims say the same thing."""
        return {"denied": "negative", "planned": "planned"}.get(self.modality, "positive")

    def signature(self) -> str:
        """Same town, event type, agents and polarity: the same claim, whoever repeats it."""
        return "|".join([self.town.id, self.event_type, ",".join(self.agents()), self.polarity()])

    def to_contract(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "actors": [a.to_dict() for a in self.actors],
            "attributed_to": self.attributed_to.to_dict() if self.attributed_to else None,
            "modality": self.modality,
            "sentence": self.sentence,
        }

    def to_dict(self) -> dict[str, Any]:
        out = self.to_contract()
        out.update(
            town=asdict(self.town),
            doc=asdict(self.doc),
            start=self.start,
            end=self.end,
            background=self.background,
            published=self.published,
            ingested_at=self.ingested_at,
        )
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Claim:
        data = _object(data, "claim")
        attributed = data.get("attributed_to")
        actors = data.get("actors")
        if not isinstance(actors, list) or len(actors) > MAX_ACTORS:
            raise RecordError(f"actors: expected a list of at most {MAX_ACTORS}")
        return cls(
            town=Town.from_dict(data.get("town")),
            event_type=_str(data, "event_type"),
            actors=tuple(Actor.from_dict(a) for a in actors),
            attributed_to=Actor.from_dict(attributed) if attributed else None,
            modality=_str(data, "modality"),
            sentence=_str(data, "sentence"),
            doc=DocRef.from_dict(data.get("doc")),
            start=int(_number(data, "start")),
            end=int(_number(data, "end")),
            background=bool(data.get("background", False)),
            published=_optional_str(data, "published"),
            ingested_at=_number(data, "ingested_at"),
        )


@dataclass(frozen=True)
class Alert:
    alert_id: str
    town: Town
    claim: Claim
    status: str
    previous: tuple[str, ...] = ()
    raised_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "town": asdict(self.town),
            "claim": self.claim.to_contract(),
            "doc": asdict(self.claim.doc),
            "novelty": {"status": self.status, "previous": list(self.previous)},
            "raised_at": self.raised_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Alert:
        """Rebuild from the contract form (as read back from the alerts topic or a JSONL file)."""
        data = _object(data, "alert")
        claim = dict(_object(data.get("claim"), "claim"), town=data.get("town"), doc=data.get("doc"))
        novelty = _object(data.get("novelty"), "novelty")
        previous = novelty.get("previous", [])
        if not isinstance(previous, list) or not all(isinstance(p, str) for p in previous):
            raise RecordError("novelty.previous: expected a list of alert ids")
        return cls(
            alert_id=_str(data, "alert_id"),
            town=Town.from_dict(data.get("town")),
            claim=Claim.from_dict(claim),
            status=_str(novelty, "status"),
            previous=tuple(previous),
            raised_at=_str(data, "raised_at"),
        )


def dumps(record: Any) -> bytes:
    payload = record.to_dict() if hasattr(record, "to_dict") else record
    return json.dumps(payload, ensure_ascii=False).encode()


def loads(raw: bytes | str | None) -> Any:
    if raw is None:
        raise RecordError("no value (a tombstone or an empty message)")
    try:
        return json.loads(raw)
    except ValueError as exc:
        # Also a number of thousands of digits, past Python's int conversion limit.
        raise RecordError(f"not JSON: {exc}") from exc
    except RecursionError:
        raise RecordError("not JSON: nested too deeply") from None
