"""Finding known names (places, actors) in tokenised Arabic text, clitics and spelling aside.

A name matches whole normalised tokens, so a name is never found inside a longer word
(القائم is not in قائمة); its first token may carry proclitics (والبوكمال، بالبوكمال، للبوكمال).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from processors.normalize import Token, clitic_forms, norm_offsets, normalize

T = TypeVar("T")


@dataclass(frozen=True)
class Match(Generic[T]):
    start: int  # offsets into the original text, proclitics excluded
    end: int
    surface: str
    value: T
    first_token: int  # index of the first and one past the last token of the name
    end_token: int


def phrase_keys(name: str) -> list[tuple[str, ...]]:
    """The token keys a name is indexed under: as written, and without spaces when multi-word
    (the press writes البوكمال where GeoNames has البو كمال)."""
    tokens = tuple(normalize(name).split())
    keys = [tokens] if tokens else []
    if len(tokens) > 1:
        keys.append(("".join(tokens),))
    return keys


class PhraseIndex(Generic[T]):
    def __init__(self, max_tokens: int = 5):
        self.max_tokens = max_tokens
        self._index: dict[tuple[str, ...], list[T]] = {}
        self._anchors: re.Pattern[str] | None = None

    def add(self, name: str, value: T) -> None:
        for key in phrase_keys(name):
            bucket = self._index.setdefault(key, [])
            if value not in bucket:
                bucket.append(value)
        self._anchors = None

    def may_occur(self, norm_text: str) -> bool:
        """False only when no indexed name can be in a text whose characters were normalised
        like tokens are (processors.normalize.char_forms): a cheap test that spares tokenising
        the many texts that name none of a few monitored towns.

        Each name has an anchor that any match contains: its last token, which is matched
        whole, or for a one-word name the word without a leading alef (clitics go before it,
        and ل + ال drops the alef: للبوكمال).
        """
        if self._anchors is None:
            anchors = {key[-1] if len(key) > 1 else key[0][1:] if key[0][:2] == "ال" else key[0]
                       for key in self._index}
            self._anchors = re.compile(
                "|".join(map(re.escape, sorted(anchors, key=len, reverse=True))) or "(?!)")
        return self._anchors.search(norm_text) is not None

    def get(self, name: str) -> list[T]:
        for key in phrase_keys(name):
            if key in self._index:
                return list(self._index[key])
        return []

    def keys(self) -> list[str]:
        return [" ".join(k) for k in self._index]

    def sort_buckets(self, key: Callable[[T], float]) -> None:
        for bucket in self._index.values():
            bucket.sort(key=key)

    def find(self, text: str, tokens: list[Token]) -> list[Match[T]]:
        """Every indexed name in ``text``, longest first, left to right, never overlapping."""
        found: list[Match[T]] = []
        i = 0
        while i < len(tokens):
            hit = self._match_at(tokens, i)
            if hit is None:
                i += 1
                continue
            width, dropped, value = hit
            start = norm_offsets(tokens[i])[dropped]
            end = tokens[i + width - 1].end
            found.append(Match(start, end, text[start:end], value, i, i + width))
            i += width
        return found

    def _match_at(self, tokens: list[Token], i: int) -> tuple[int, int, T] | None:
        for width in range(min(self.max_tokens, len(tokens) - i), 0, -1):
            rest = tuple(t.norm for t in tokens[i + 1 : i + width])
            for form, dropped in clitic_forms(tokens[i].norm):
                values = self._index.get((form, *rest))
                if values:
                    return width, dropped, values[0]
        return None
