"""Documents from files: seed .txt files (first non-empty line is the title), folders of them, and
JSON Lines (optionally gzipped) in the contract's input schema.

A .txt file may be UTF-8, UTF-16 with a byte-order mark, or windows-1256 (what Arabic Windows
editors save by default); JSON Lines are UTF-8, as JSON requires.

Bad input never stops a read: an unreadable file, a broken line or an empty document is logged on
one line, counted in ``marsad_input_skipped_total`` and skipped.
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from marsad.metrics import SKIPPED_INPUTS
from marsad.records import MAX_DOCUMENT_BYTES, Document, EmptyDocument, RecordError, TooLarge

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".ndjson")


@dataclass
class ReadReport:
    documents: int = 0
    skipped: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str, kind: str) -> None:
        SKIPPED_INPUTS.labels(kind).inc()
        self.skipped.append(f"{where}: {reason}")
        log.warning("skipped %s: %s", where, reason)


def _is_jsonl(path: Path) -> bool:
    return path.name.endswith(JSONL_SUFFIXES)


def expand(paths: Sequence[str | Path], report: ReadReport) -> list[Path]:
    """Files in the order given; a folder contributes its documents sorted by name."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.is_file() and (p.suffix in TEXT_SUFFIXES or _is_jsonl(p)))
            if not inside:
                report.skip(str(path), "folder has no .txt or .jsonl documents", "empty_folder")
            files.extend(inside)
        elif path.is_file():
            files.append(path)
        else:
            report.skip(str(path), "no such file or folder", "unreadable_file")
    return files


def decode_text(raw: bytes) -> str | None:
    """The text of a .txt file, or None when it is in none of the encodings read here."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # windows-1256 maps nearly every byte to something, so any binary file would "decode": only
    # text whose letters are mostly Arabic is taken for it.
    text = raw.decode("cp1256", errors="replace")
    letters = [c for c in text if c.isalpha()]
    arabic = sum(1 for c in letters if "\u0600" <= c <= "\u06ff")
    return text if letters and arabic >= 0.6 * len(letters) and "\ufffd" not in text else None


def read_text_document(path: Path, report: ReadReport) -> Document | None:
    try:
        # A file far past the document limit is refused before it is read into memory.
        size = path.stat().st_size
        if size > 4 * MAX_DOCUMENT_BYTES:
            report.skip(str(path), f"document: {size} bytes, more than {MAX_DOCUMENT_BYTES}", "too_large")
            return None
        content = decode_text(path.read_bytes())
    except OSError as exc:
        report.skip(str(path), exc.strerror or str(exc), "unreadable_file")
        return None
    if content is None:
        report.skip(str(path), "not text in UTF-8, UTF-16 or windows-1256", "wrong_encoding")
        return None
    lines = content.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        report.skip(str(path), "empty document", "empty_document")
        return None
    title = lines[first].strip()
    body = "\n".join(lines[first + 1 :]).strip() or title
    try:
        return Document.accept({"title": title, "text": body, "source": path.name,
                                "text_source": "file"})
    except RecordError as exc:
        report.skip(str(path), str(exc), _kind(exc))
        return None


class _LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


def _lines(stream: _LineReader) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines, None for one far past the document limit (read past, never held whole)."""
    cap = 2 * MAX_DOCUMENT_BYTES
    number = 0
    while line := stream.readline(cap + 1):
        number += 1
        if len(line) > cap and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(cap + 1)
            yield number, None
        else:
            yield number, line


def read_jsonl(path: Path, report: ReadReport) -> Iterator[Document]:
    """Each line decoded on its own, so a line with bad bytes costs that line only."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            for number, raw in _lines(stream):
                where = f"{path}:{number}"
                if raw is None:
                    report.skip(where, f"document: a line of more than {2 * MAX_DOCUMENT_BYTES} bytes",
                                "too_large")
                    continue
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    report.skip(where, "not UTF-8 text", "wrong_encoding")
                    continue
                if not line.strip():
                    continue
                try:
                    yield Document.accept(json.loads(line))
                except json.JSONDecodeError as exc:
                    report.skip(where, f"malformed JSON ({exc.msg} at column {exc.colno})",
                                "malformed_json")
                except RecursionError:
                    report.skip(where, "malformed JSON (nested too deeply)", "malformed_json")
                except RecordError as exc:
                    report.skip(where, str(exc), _kind(exc))
                except ValueError as exc:
                    # json's other refusal: a number of thousands of digits.
                    report.skip(where, f"malformed JSON ({exc})", "malformed_json")
    except (OSError, EOFError, zlib.error) as exc:
        report.skip(str(path), getattr(exc, "strerror", None) or str(exc), "unreadable_file")


def _kind(exc: RecordError) -> str:
    if isinstance(exc, TooLarge):
        return "too_large"
    return "empty_document" if isinstance(exc, EmptyDocument) else "invalid_document"


def read_documents(paths: Sequence[str | Path], report: ReadReport | None = None) -> Iterator[Document]:
    """Every readable document under ``paths``, in order."""
    report = report if report is not None else ReadReport()
    for path in expand(paths, report):
        if _is_jsonl(path):
            docs: Iterator[Document] = read_jsonl(path, report)
        else:
            doc = read_text_document(path, report)
            docs = iter([doc] if doc else [])
        for doc in docs:
            report.documents += 1
            yield doc
