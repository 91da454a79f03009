"""Article pages to text: main text, title, author and date with trafilatura, plus the Arabic
check for feeds configured Arabic-only."""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass
from email.message import Message
from typing import cast

import trafilatura
from trafilatura.settings import Document as PageDocument

log = logging.getLogger(__name__)

_ARABIC_LETTER = re.compile(r"[\u0621-\u064A\u066E-\u06D3\u06D5\u06FA-\u06FF\u0750-\u077F"
                            r"\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFC]")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SAMPLE = 4000  # characters looked at to decide a document's script
# trafilatura's time and memory grow with a page's elements, not its bytes: 10 MB of "<a>" tags
# take it 80 s and 2 GB. News article pages have a few thousand tags; "<" counts open and close
# tags (and the odd "<" in a script), so this allows some 50,000 elements, a few seconds' work.
MAX_MARKUP = 100_000


class PageTooComplex(ValueError):
    """An article page with more markup than extraction is allowed to chew on."""


@dataclass(frozen=True)
class Article:
    text: str
    title: str | None
    author: str | None
    date: str | None  # ISO 8601 date as the page states it


def _media_type_and_charset(content_type: str | None) -> tuple[str | None, str | None]:
    if not content_type:
        return None, None
    message = Message()
    message["Content-Type"] = content_type
    charset = message.get_param("charset")
    return message.get_content_type(), charset if isinstance(charset, str) else None


def _decode(body: bytes, charset: str | None) -> str | bytes:
    """Text when the HTTP charset is known and right; otherwise the bytes, for trafilatura to
    decide from the page's own <meta charset> and the content."""
    if charset:
        try:
            return body.decode(codecs.lookup(charset).name)
        except (LookupError, UnicodeDecodeError):
            log.debug("declared charset %r does not decode the page; detecting", charset)
    return body


def extract_article(body: bytes, content_type: str | None, url: str,
                    title_hint: str | None = None) -> Article | None:
    """The page's main text and metadata, or None when it is not HTML or has no text.
    ``title_hint`` (the feed's title for the item) is removed from the start of the text too.
    Raises PageTooComplex for a page with more than MAX_MARKUP tags.
    """
    media_type, charset = _media_type_and_charset(content_type)
    if media_type is not None and media_type not in _HTML_TYPES:
        return None
    if body.count(b"<") > MAX_MARKUP:
        raise PageTooComplex(f"more than {MAX_MARKUP:,} tags")
    try:
        # A trafilatura Document: the dict form is only for as_dict=True.
        doc = cast(PageDocument | None, trafilatura.bare_extraction(
            _decode(body, charset), url=url, with_metadata=True, include_comments=False))
    except Exception as exc:  # noqa: BLE001 - hostile HTML must cost one article, not the poller
        log.info("extraction failed for a page: %s: %s", type(exc).__name__, exc)
        return None
    if doc is None or not doc.text or not doc.text.strip():
        return None
    title = (doc.title or "").strip() or None
    return Article(_without_heading(doc.text, (title, title_hint)), title,
                   (doc.author or "").strip() or None, doc.date or None)


def _without_heading(text: str, titles: tuple[str | None, ...]) -> str:
    """trafilatura keeps the page's <h1> at the start of the text (on its own line, or run into
    the first paragraph on short pages); the title is a field of its own."""
    text = text.strip()
    for title in titles:
        title = " ".join((title or "").split())
        if title and text.startswith(title) and text[len(title):len(title) + 1].isspace():
            return text[len(title):].strip()
    return text


def is_arabic(text: str) -> bool:
    """Mostly Arabic letters among the letters of ``text`` (digits and punctuation ignored)."""
    sample = text[:_SAMPLE]
    letters = sum(1 for ch in sample if ch.isalpha())
    if letters == 0:
        return False
    return len(_ARABIC_LETTER.findall(sample)) / letters >= 0.5


def looks_non_arabic(text: str) -> bool:
    """Enough letters to judge, and not Arabic: lets a poller skip fetching such articles."""
    return sum(1 for ch in text[:_SAMPLE] if ch.isalpha()) >= 20 and not is_arabic(text)
