"""Which mentions of a town name really are the town, and which are claims about it.

Several town names are common words (الباب "the door", القائم "existing", تدمر "destroys",
الميادين "the squares"): for those a mention needs evidence that it is a place. And a town named
only to locate something else ("the desert of X", the X crossing, the X road) is not the subject
of a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from processors.normalize import Token, clitic_forms, normalize

# Place names that are everyday words, measured on 10k news articles (scripts/build_common_names.py).
_COMMON = Path(__file__).with_name("data") / "common_names.txt"
# Town names that are also ordinary words in news Arabic, known beyond that measurement.
HOMOGRAPHS = frozenset(_COMMON.read_text(encoding="utf-8").split()) | frozenset(normalize(w) for w in (
    "الباب", "القائم", "الميادين", "تدمر", "الثورة", "الكرامة", "السلام", "النصر", "الضمير",
    "القصير", "الحرة", "السفيرة", "الشيخ", "الحسينية", "الرحيبة", "التل", "النبك", "الجزيرة",
    "السلمية", "الصالحية", "الحمدانية", "المعارة", "الخالدية", "الجبل", "الهول", "الزاوية",
    "المنصورة", "العزيزية", "الغدير", "الحامدية", "الموصل", "الرقة",
))
# Nouns that make the next name a place: "the city of X", "the countryside of X".
PLACE_HEADS = frozenset(normalize(w) for w in (
    "مدينة", "بلدة", "قرية", "ريف", "محيط", "أطراف", "منطقة", "ناحية", "قضاء", "مدينتي", "بلدتي",
    "مركز", "أحياء", "حي", "شرق", "غرب", "شمال", "جنوب", "شرقي", "غربي", "شمالي", "جنوبي",
    "داخل", "قرب", "بالقرب", "جوار", "مشارف", "تخوم", "أبواب", "مدن", "بلدات", "مدينتا",
))
# Nouns that use the town only as a locator: "the desert of X" is not the town.
LOCATOR_HEADS = frozenset(normalize(w) for w in (
    "بادية", "صحراء", "طريق", "معبر", "حدود", "جسر", "نهر", "مطار", "أوتوستراد", "سد", "حقل",
    "محافظة", "محافظتي", "منفذ", "بوابة", "ضفة", "قناة",
))


@dataclass(frozen=True)
class TownUse:
    real: bool  # the mention is the place, not a common word
    locator: bool  # the place only locates something else


def is_common_word(tokens: list[Token], first: int, end: int) -> bool:
    """A place name that is more often an ordinary word: no evidence of a place on its own.
    Proclitics do not change that (بالباب is still "with the door")."""
    rest = " ".join(t.norm for t in tokens[first + 1 : end])
    return any(" ".join(filter(None, (form, rest))) in HOMOGRAPHS
               for form, _ in clitic_forms(tokens[first].norm))


# Set phrases in which a homograph is no place: the chargé d'affaires, the status quo.
IDIOMS = frozenset((normalize(a), normalize(b)) for a, b in (
    ("القائم", "بالأعمال"), ("القائم", "بأعمال"), ("الوضع", "القائم"), ("النظام", "القائم"),
    ("الباب", "أمام"), ("فتح", "الباب"), ("باب", "الباب"),
))


def _heads(tokens: list[Token], index: int) -> set[str]:
    """The word before the mention, with and without its proclitics (بمحافظة -> محافظة)."""
    if index == 0:
        return set()
    return {form for form, _ in clitic_forms(tokens[index - 1].norm)}


def judge_mention(tokens: list[Token], first: int, end: int, other_places: set[int],
                  tags: list[str] | None = None) -> TownUse:
    """``first``/``end``: the mention's token span; ``other_places``: token indices where other
    places start (common words excluded); ``tags``: the named-entity tagger's BIO tags for the
    tokens, if there is one."""
    heads = _heads(tokens, first)
    locator = bool(heads & LOCATOR_HEADS)
    if not is_common_word(tokens, first, end):
        return TownUse(True, locator)
    name = tokens[first].norm
    following = tokens[end].norm if end < len(tokens) else ""
    if (name, following) in IDIOMS or any((head, name) in IDIOMS for head in heads):
        return TownUse(False, locator)
    tagged_place = tags is not None and tags[first].endswith("LOC")
    coordinated = any(0 < abs(i - first) <= 3 for i in other_places)
    return TownUse(bool(heads & PLACE_HEADS) or coordinated or tagged_place, locator)
