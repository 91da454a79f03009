"""Feed documents to items: RSS 0.9x/1.0/2.0 and Atom through feedparser, with a stable identity
per item.

Encoding: feedparser decides from the HTTP Content-Type charset, the XML declaration and a BOM
(RFC 3023 rules), so the Content-Type header is always passed along; windows-1256, ISO-8859-6
and UTF-8 with or without a BOM arrive as intact Arabic text.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html import unescape
from typing import Any

import feedparser
import lxml.etree
import lxml.html

log = logging.getLogger(__name__)

# Bozo reasons that describe a readable feed served with a sloppy header, not a broken one.
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_BLOCK_TAGS = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
               "section", "article", "header", "footer", "pre", "table", "ul", "ol", "dd", "dt")
_MAX_IDENTITY = 2048


@dataclass(frozen=True)
class FeedItem:
    key: str  # hash of the identity: what the seen-items store remembers
    identity: str  # guid, else link, else a content hash
    link: str | None
    title: str | None
    published: str | None  # ISO 8601, UTC
    author: str | None
    content: str  # plain text of the item's content, else its summary
    summary: str | None


@dataclass(frozen=True)
class ParsedFeed:
    items: list[FeedItem]
    # Why the document is not a clean feed (malformed XML, not a feed at all); items then hold
    # whatever could be read.
    error: str | None = None


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment, one line per block element."""
    if not markup:
        return ""
    if "<" not in markup:
        return _tidy(unescape(markup))
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return _tidy(re.sub(r"<[^>]*>", " ", unescape(markup)))
    for element in root.iter("script", "style"):
        element.drop_tree()
    for element in root.iter(*_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
    return _tidy(root.text_content())


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _iso(parsed: Any) -> str | None:
    """feedparser's UTC struct_time to ISO 8601."""
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = parsed[:6]
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).isoformat()
    except (TypeError, ValueError):
        return None


def _http_link(value: Any) -> str | None:
    if isinstance(value, str) and re.match(r"^https?://", value.strip(), re.IGNORECASE):
        return value.strip()
    return None


def _content(entry: Any) -> str:
    """The richest text the entry carries: the longest content block, else the summary."""
    blocks = [html_to_text(c.get("value")) for c in entry.get("content") or []]
    best = max(blocks, key=len, default="")
    return best or html_to_text(entry.get("summary"))


def item_key(identity: str) -> str:
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _item(entry: Any) -> FeedItem | None:
    link = _http_link(entry.get("link"))
    title = html_to_text(entry.get("title")) or None
    content = _content(entry)
    summary = html_to_text(entry.get("summary")) or None
    guid = (entry.get("id") or "").strip()
    if guid:
        identity = "guid:" + guid[:_MAX_IDENTITY]
    elif link:
        identity = "link:" + link[:_MAX_IDENTITY]
    elif title or content:
        identity = "hash:" + hashlib.sha256(f"{title}\n{content}".encode()).hexdigest()
    else:
        return None
    return FeedItem(
        key=item_key(identity),
        identity=identity,
        link=link,
        title=title,
        published=_iso(entry.get("published_parsed") or entry.get("updated_parsed")),
        author=(entry.get("author") or "").strip() or None,
        content=content,
        summary=summary,
    )


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}));")


def _valid_char_refs(body: bytes) -> bytes:
    """``body`` with character references to surrogates or past U+10FFFF made U+FFFD: one of
    them makes feedparser's fallback parser fail on the whole feed."""
    def fix(match: re.Match[bytes]) -> bytes:
        code = int(match[1], 16) if match[1] else int(match[2])
        return match[0] if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else b"&#xFFFD;"
    return _CHAR_REF.sub(fix, body)


def parse_feed(body: bytes, content_type: str | None, url: str) -> ParsedFeed:
    """Items of a feed document, oldest first when the feed dates them.

    Never raises on bad input: a malformed or non-feed document gives the items that could be
    read and an ``error``.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        # A file object, never bytes or str: given those, feedparser may treat them as a path
        # or URL to open, and a hostile server chooses the body.
        parsed = feedparser.parse(io.BytesIO(_valid_char_refs(body)), response_headers=headers)
    except Exception as exc:  # noqa: BLE001 - feedparser on hostile input; the feed is counted bad
        return ParsedFeed([], f"feed parser failed: {type(exc).__name__}: {exc}")
    error = None
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if problem is not None and not isinstance(problem, _BENIGN_BOZO):
        error = f"malformed feed: {problem}"
    items: list[FeedItem] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        item = _item(entry)
        if item is None or item.key in seen:
            continue
        seen.add(item.key)
        items.append(item)
    if not items and not parsed.get("version"):
        error = error or "not an RSS or Atom feed"
    # Feeds list newest first; downstream novelty works best on the order things happened.
    # Undated items keep their relative position by being ordered as the feed's reverse.
    items.reverse()
    if all(item.published for item in items):
        items.sort(key=lambda item: item.published or "")
    return ParsedFeed(items, error)
