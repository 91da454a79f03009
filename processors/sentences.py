"""Sentences with offsets, so evidence is quoted exactly as published."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? ؟ ؛ (but not a decimal point or a dotted abbreviation between digits),
# or at a line break; closing quotes and brackets right after the mark stay with the sentence.
_END = re.compile(r"(?:(?<!\d)\.(?!\d)|[!?؟؛…]|\.(?=\s*$))+[\"'»”’)\]]*|\n+")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


def split_sentences(text: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    start = 0
    for match in _END.finditer(text):
        _append(text, start, match.end(), sentences)
        start = match.end()
    _append(text, start, len(text), sentences)
    return sentences


def _append(text: str, start: int, end: int, out: list[Sentence]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    begin = start + lead
    out.append(Sentence(stripped, begin, begin + len(stripped)))
