"""OPML subscription lists (what feed readers export) to feed definitions."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_OPML_BYTES = 10_000_000


class OpmlError(ValueError):
    """The file cannot be read as OPML; the message says why."""


@dataclass(frozen=True)
class OpmlFeed:
    name: str
    url: str


@dataclass
class OpmlReport:
    feeds: list[OpmlFeed]
    skipped: list[str]  # one line per outline that was not taken, with the reason


def read_opml(path: str | Path) -> OpmlReport:
    """Every outline with an http(s) ``xmlUrl``, nested categories included, named by its
    ``text``/``title`` (else its host); names are made unique within the file."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_OPML_BYTES:
            raise OpmlError(f"{file}: larger than {MAX_OPML_BYTES} bytes")
        # Python's expat expands no external entities and limits entity amplification.
        root = ET.fromstring(file.read_bytes())
    except OSError as exc:
        raise OpmlError(f"{file}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise OpmlError(f"{file}: not valid XML ({exc})") from exc
    if root.tag.lower() != "opml":
        raise OpmlError(f"{file}: not an OPML file (root element <{root.tag}>)")
    feeds: list[OpmlFeed] = []
    skipped: list[str] = []
    names: set[str] = set()
    urls: set[str] = set()
    for outline in root.iter("outline"):
        attrs = {k.lower(): v.strip() for k, v in outline.attrib.items()}
        url = attrs.get("xmlurl")
        if url is None:
            continue  # a category
        label = attrs.get("text") or attrs.get("title") or url
        if not re.match(r"^https?://", url, re.IGNORECASE) or not urlsplit(url).hostname:
            skipped.append(f"{label}: not an http(s) feed URL")
            continue
        if url in urls:
            skipped.append(f"{label}: listed twice")
            continue
        urls.add(url)
        base = " ".join((attrs.get("text") or attrs.get("title") or
                         urlsplit(url).hostname or url).split())
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base} ({n})"
        names.add(name)
        feeds.append(OpmlFeed(name, url))
    return OpmlReport(feeds, skipped)
