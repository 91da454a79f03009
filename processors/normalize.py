"""Arabic normalisation for matching, and tokens that keep offsets into the original text.

Matching works on a normalised form (no diacritics or tatweel, one alef, yeh for alef maksura,
heh for teh marbuta), while evidence is always quoted from the original text: every token
carries the offsets of its original characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from camel_tools.tokenizers.word import simple_word_tokenize
from camel_tools.utils.charsets import AR_DIAC_CHARSET
from camel_tools.utils.dediac import dediac_ar
from camel_tools.utils.normalize import (
    normalize_alef_ar,
    normalize_alef_maksura_ar,
    normalize_teh_marbuta_ar,
    normalize_unicode,
)

TATWEEL = "\u0640"
_DROPPED = frozenset(AR_DIAC_CHARSET) | {TATWEEL, "\u200c", "\u200d", "\u200e", "\u200f", "\ufeff"}
_SPACES = re.compile(r"\s+")
# Proclitics in the order they attach: conjunction, then preposition, then the article.
_CONJ = ("و", "ف")
_PREP = ("ب", "ل", "ك")


def normalize(text: str) -> str:
    """The matching form of a text (camel-tools' unicode, alef, alef maksura and teh marbuta maps)."""
    text = normalize_unicode(dediac_ar(text)).replace(TATWEEL, "")
    text = normalize_teh_marbuta_ar(normalize_alef_maksura_ar(normalize_alef_ar(text)))
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def _char_form(char: str) -> str:
    return "" if char in _DROPPED else normalize(char) or char


def char_forms(text: str) -> str:
    """``text`` with every character in its matching form, as the tokens' ``norm`` are built."""
    return "".join(map(_char_form, text))


def normalize_char(char: str) -> str:
    """One character's matching form ('' for diacritics and tatweel), so offsets stay mappable."""
    return _char_form(char)


@dataclass(frozen=True)
class Token:
    text: str  # as in the original text
    norm: str  # matching form
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """camel-tools' word tokenisation, aligned back onto the original text for offsets."""
    tokens: list[Token] = []
    cursor = 0
    for piece in simple_word_tokenize(text):
        start = text.find(piece, cursor)
        if start < 0:
            # The tokenizer only splits, it never rewrites; a miss means odd unicode, so skip it.
            continue
        end = start + len(piece)
        cursor = end
        norm = "".join(_char_form(c) for c in piece)
        if norm:
            tokens.append(Token(piece, norm, start, end))
    return tokens


def clitic_forms(norm: str) -> list[tuple[str, int]]:
    """A normalised word and what it can be with proclitics removed: والبوكمال -> البوكمال.

    Each form comes with how many leading characters of ``norm`` it dropped. ل before the
    article drops the article's alef (للبوكمال = ل + البوكمال), so that form is rebuilt. The word
    itself comes first: callers prefer the least stripped match.
    """
    stems = [(norm, 0)]
    if len(norm) > 3 and norm[0] in _CONJ:
        stems.append((norm[1:], 1))
    for stem, dropped in list(stems):
        if len(stem) > 3 and stem[0] in _PREP:
            stems.append((stem[1:], dropped + 1))
            if stem.startswith("لل") and len(stem) > 4:
                stems.append(("ا" + stem[1:], dropped + 1))
    return stems


def norm_offsets(token: Token) -> list[int]:
    """For each character of ``token.norm``, the offset in the original text it came from."""
    offsets: list[int] = []
    for index, char in enumerate(token.text):
        offsets.extend([token.start + index] * len(_char_form(char)))
    return offsets
