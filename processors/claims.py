"""Turning sentences about monitored towns into claims: event type, actors and roles, source, modality.

The rules work clause by clause (a long Arabic news sentence chains several events with ،), on
the normalised text, with cue words anchored at the start of a word after its proclitics.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from marsad.records import Actor, Claim, Document, RecordError, believed_time, parse_time
from processors.actors import DERIVED_PREFIX, ActorLexicon, ActorRef, derived_actor_id
from processors.gazetteer import Gazetteer, MonitoredTowns
from processors.mentions import is_common_word, judge_mention
from processors.normalize import Token, char_forms, clitic_forms, normalize, tokenize
from processors.phrases import Match
from processors.sentences import Sentence, split_sentences
from processors.taggers import Tagger

# Conjunction, preposition and article before nouns; conjunction, future س and the imperfect
# prefix before verbs (تقصف، سيشن).
_PROCLITICS = r"(?:[وف]?(?:[بلك]|لل)?(?:ال)?|[وف]?س?[يتن])"

# Cue stems per event type, written as published (normalised when compiled). A stem matches a
# word that starts with it after proclitics; stems marked with $ must match the whole word.
CUES: dict[str, tuple[str, ...]] = {
    "explosion": ("انتحاري", "مفخخ", "عبوة ناسفة", "عبوات ناسفة", "لغم$", "ألغام", "تفجير",
                  "انفجار", "فجر$", "فجرت$"),
    "air_strike": ("غارة", "غارات", "قصف جوي", "ضربة جوية", "ضربات جوية", "ضربة صاروخية جوية",
                   "قاذفات", "قاذفة", "طائرات مسيرة", "طائرة مسيرة", "طائرات دون طيار",
                   "غطاء جوي", "إسناد جوي", "ضربة جماعية"),
    "shelling_missile": ("قصف مدفعي", "صاروخ", "صواريخ", "قذائف", "قذيفة", "مدفعية", "راجمات",
                         "هاون", "باليستي"),
    "territory_control": ("تحرير", "حرر", "يحرر", "تحررت", "سيطر", "يسيطر", "تسيطر", "استعاد",
                          "يستعيد", "تستعيد", "استعادة", "دخل$", "دخلت$", "دخلوا$", "دخول", "يدخل",
                          "اقتحم", "اقتحام", "تسلل", "يتسلل", "انتزاع", "استولى", "الاستيلاء",
                          "احتل", "احتلال", "يحتل", "اجتياح",
                          "طرد$", "طردوا$"),
    "withdrawal": ("انسحاب", "انسحب", "ينسحب", "تنسحب", "المنسحبة", "فرار", "فر$", "فروا$",
                   "يفر$", "هروب", "هرب$", "هربوا$", "الهرب", "استسلام", "استسلم", "المستسلمين",
                   "إجلاء", "أجلي", "غادر", "مغادرة", "يغادر"),
    "armed_clash": ("معارك", "معركة", "اشتباك", "اشتباكات", "هجوم", "هجمات", "هاجم", "يهاجم",
                    "كمين", "مواجهات", "مواجهة", "قتال", "يقاتل", "يقاتلون", "سيقاتلون"),
    "military_buildup": ("تعزيزات", "تعزيز", "عزز", "يعزز", "حشد$", "حشود", "يحشد", "يستعد",
                         "تستعد", "استعداد", "تحصين", "تحصينات", "يتحصن", "يتحصنون", "الإعداد"),
    "accusation": ("اتهم", "اتهام", "اتهامات", "يتهم", "تتهم", "زعم", "زاعمين", "حمل$", "حملت$",
                   "ادعى", "ادعت", "اتهموا"),
    "humanitarian": ("نزوح", "نازحين", "النازحين", "نزح", "مساعدات", "مخيم", "لاجئين", "اللاجئين",
                     "مهجرة", "مهجرين", "محرومين", "محاصرين", "الأوضاع الإنسانية", "كارثة إنسانية"),
    "casualties": ("قتلى", "قتيل", "جرحى", "جريح", "مقتل", "قتل$", "قتلت$", "يقتل", "إصابة",
                   "مصرع", "ضحايا", "مقبرة جماعية", "مقابر جماعية", "جثث"),
}
# Evacuating civilians or the wounded is humanitarian, whatever withdrawal word it uses.
_CIVILIAN_EVACUATION = ("إجلاء المدنيين", "إجلاء الجرحى", "إجلاء السكان", "إخلاء السكان",
                        "إجلاء العائلات", "إخلاء المدنيين", "إجلاء الأهالي", "إجلاء آلاف المدنيين")
# Generic bombardment: an air strike when aircraft are in the clause, else shelling.
_BOMBARD = ("قصف", "يقصف", "قصفت", "ضربت", "ضرب$", "ضربات", "ضربة", "استهداف", "استهدف")
_AIRCRAFT = ("طيران", "طائرات", "طائرة", "الطيران", "مقاتلات", "قاذفات", "جوي", "جوية")

# A denial is a modality of the act it denies ("the coalition denies striking ..."); only a
# denial of no particular act is an accusation-type claim.
_DENIAL = ("نفى", "ينفي", "نفت", "تنفي", "نفي$", "رفض", "رفضت")
_NEGATION = ("نفى", "ينفي", "نفت", "تنفي", "نفي", "لم$", "لا$", "ليس$", "عدم", "رفض")
# لن negates the future: "it will not end before ISIS surrenders" predicts, it denies nothing.
_PLANNED = ("لن$", "يستعد", "تستعد", "يعتزم", "تعتزم", "سوف$", "يخطط", "تخطط", "ستشن", "سيشن",
            "الإعداد", "يعتزمون", "ينوي", "تنوي")
_REPORTING = ("قال$", "قالت$", "يقول$", "تقول$", "قالوا$", "أعلن$", "أعلنت$", "يعلن$", "أفاد$",
              "أفادت$", "ذكر$", "ذكرت$", "أكد$", "أكدت$", "أوضح$", "أوضحت$", "أشار$", "أشارت$",
              "أضاف$", "أضافت$", "صرح$", "كشف$", "كشفت$", "بحسب$", "حسب$", "وفق$", "وفقا$",
              "نقلا$", "نقلت$", "نقل$", "اتهم$", "اتهمت$", "نفى$", "نفت$", "زعم$", "أقر$")
_TARGET_MARKERS = ("مواقع", "أهداف", "أهدافا", "معاقل", "ضد", "على", "مراكز", "تجمعات", "مقرات",
                   "قوافل", "فلول", "قبضة", "مسلحي", "عناصر", "مقاتلي", "مواقع", "تابعة", "تنظيم")
# Markers that put the event right after them in the past: "after ISIS had entered", "since".
_BACKGROUND = ("بعد أن", "بعد ان", "منذ", "قبل أن", "سبق أن", "سبق وأن", "كان قد", "كانت قد",
               "كانوا قد")
# Markers that make a whole clause a recollection, wherever the event is in it.
_RECALL = ("العام الماضي", "الشهر الماضي", "الأسبوع الماضي", "السنة الماضية", "العام المنصرم",
           "الشهر المنصرم", "سابقا", "في وقت سابق", "مؤخرا", "في عام", "يشار إلى", "تجدر الإشارة",
           "يذكر أن", "وسبق", "الأحد الماضي", "الاثنين الماضي", "الثلاثاء الماضي",
           "الأربعاء الماضي", "الخميس الماضي", "الجمعة الماضي", "السبت الماضي")
# A date in the clause ("يوم 17/11/2017 أعلن", "في 12 فيفري 2008 اغتيل") more than this many days
# before the document was published dates a recalled event; the dateline's "الأحد 19 مارس 2017"
# is the news itself. Without a published time, a full numeric date is taken as a recollection
# and a named month is not (it is as often the dateline).
RECALL_DAYS = 2
FUTURE_DAYS = 120
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?!\d)")
# Month names of the Maghreb (جانفي), of Egypt and the Gulf (يناير) and of the Levant and Iraq
# (كانون الثاني).
_MONTH_NAMES = (
    ("جانفي", "يناير", "كانون الثاني"), ("فيفري", "فبراير", "شباط"), ("مارس", "آذار"),
    ("أفريل", "أبريل", "نيسان"), ("ماي", "مايو", "أيار"), ("جوان", "يونيو", "يونيه", "حزيران"),
    ("جويلية", "يوليو", "يوليه", "تموز"), ("أوت", "أغسطس", "آب"), ("سبتمبر", "أيلول"),
    ("أكتوبر", "تشرين الأول"), ("نوفمبر", "تشرين الثاني"), ("ديسمبر", "كانون الأول"),
)
_MONTHS = {normalize(name): number for number, names in enumerate(_MONTH_NAMES, start=1)
           for name in names}
_NAMED_DATE = re.compile(
    r"(?<!\d)(\d{1,2})\s+(?:من\s+)?("
    + "|".join(re.escape(m).replace(r"\ ", r"\s+") for m in sorted(_MONTHS, key=len, reverse=True))
    + r")(?!\w)(?:\s+(?:(?:من\s+)?(?:العام|عام|سنة)\s+)?(\d{4}))?")
_RELATIVE = re.compile(normalize(r"(?<!\w)(?:التي|الذي|الذين|اللذين|اللتين|اللواتي)(?!\w)"))
EVIDENCE_POPULATION = 10_000
# A tagged span longer than this is a tagging accident, not a name; as an actor its id would
# bloat the town's novelty history.
MAX_NAME_TOKENS = 8
_ARMED_GROUP_WORDS = frozenset(normalize(w) for w in (
    "حركة", "جبهة", "فصائل", "فصيل", "لواء", "ألوية", "كتائب", "كتيبة", "جيش", "قوات", "تنظيم",
    "ميليشيا", "ميليشيات", "مليشيا", "حزب", "وحدات", "جماعة", "هيئة", "فيلق", "سرايا", "مجموعة",
    "الجيش", "المعارضة", "الفصائل", "الجماعات", "المسلحة",
))
_CLAUSE_SPLIT = re.compile(r"[،,;:]|\s[-–]\s")


def _compile(stems: tuple[str, ...], proclitics: str = _PROCLITICS) -> re.Pattern[str]:
    parts = []
    for stem in stems:
        whole = stem.endswith("$")
        body = re.escape(normalize(stem.rstrip("$"))).replace(r"\ ", r"\s+")
        parts.append(body + (r"(?!\w)" if whole else r"\w*"))
    return re.compile(rf"(?<!\w){proclitics}(?:{'|'.join(parts)})")


_CUE_RES = {event: _compile(stems) for event, stems in CUES.items()}
_BOMBARD_RE = _compile(_BOMBARD)
_CIVILIAN_EVACUATION_RE = _compile(_CIVILIAN_EVACUATION)
_AIRCRAFT_RE = _compile(_AIRCRAFT)
_NEGATION_RE = _compile(_NEGATION)
_DENIAL_RE = _compile(_DENIAL)
_PLANNED_RE = _compile(_PLANNED)
# Reporting cues are listed with their inflections; a verb prefix would turn يكشف ("reveals",
# said of a document) into a speaker.
_REPORTING_RE = _compile(_REPORTING, proclitics="[وف]?")
_BACKGROUND_RE = re.compile("|".join(re.escape(normalize(m)) for m in _BACKGROUND))
_RECALL_RE = re.compile("|".join(re.escape(normalize(m)) for m in _RECALL))
_TARGET_SET = frozenset(normalize(m) for m in _TARGET_MARKERS)
_GRIP = frozenset(normalize(m) for m in ("قبضة", "سيطرة", "أيدي", "يد"))
_SPEAKER_STOP = frozenset(normalize(w) for w in (
    "أن", "إن", "إنه", "أنه", "انها", "أنها", "بأن", "في", "عن", "على", "إلى", "الى", "من", "اليوم",
    "أمس", "مساء", "صباح", "التي", "الذي", "الذين", "يوم", "خلال", "مجددا", "لها", "له", "لنا",
    "بيان", "تصريح", "تصريحات", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد",
    "الاثنين",
))
# Indefinite sources that still name who speaks: "a military source", "witnesses".
_SOURCE_NOUNS = frozenset(normalize(w) for w in (
    "مصدر", "مصادر", "شهود", "ناشطون", "ناشطين", "مسؤول", "مسؤولون", "قائد", "قادة", "وكالة",
    "وكالات", "منظمة", "مراسل", "متحدث", "سكان", "مصدرا", "شهودا",
))


# When a clause has cues of several types, the more decisive event is the claim ("ISIS attacked
# and entered the town" is about control of the town); an accusation that frames the clause wins.
PRIORITY = ("territory_control", "withdrawal", "explosion", "air_strike", "shelling_missile",
            "military_buildup", "armed_clash", "humanitarian", "casualties")


def event_type(norm_clause: str, context: str = "") -> tuple[str, int] | None:
    """The clause's event type and where its cue starts.

    ``context`` (the whole sentence) tells a bombardment by aircraft from shelling."""
    # An event in a relative clause ("... which ISIS controls") describes, the main one tells.
    relative = _RELATIVE.search(norm_clause)
    if relative and relative.start() > 0 and event_type(norm_clause[: relative.start()], context):
        return event_type(norm_clause[: relative.start()], context)
    found: dict[str, int] = {}
    for event, pattern in _CUE_RES.items():
        if match := pattern.search(norm_clause):
            found[event] = match.start()
    if bombard := _BOMBARD_RE.search(norm_clause):
        kind = "air_strike" if _AIRCRAFT_RE.search(context or norm_clause) else "shelling_missile"
        found[kind] = min(found.get(kind, bombard.start()), bombard.start())
    if not found:
        denial = _DENIAL_RE.search(norm_clause)
        return ("accusation", denial.start()) if denial else None
    first = min(found, key=found.__getitem__)
    if first == "accusation":
        return first, found[first]
    if evacuation := _CIVILIAN_EVACUATION_RE.search(norm_clause):
        return "humanitarian", evacuation.start()
    kind = next(event for event in PRIORITY if event in found)
    return kind, found[kind]


_STILL = re.compile(normalize(r"(?:لا|ما)\s*(?:تزال|يزال|زال|زالت|تزل|يزل|يقل|تقل)"))


def modality(norm_clause: str, cue_at: int, attributed: bool) -> str:
    # لا تزال / ما زال mean "still": the negation particle negates nothing there.
    before = _STILL.sub(lambda m: "_" * len(m.group()), norm_clause[: cue_at + 1])
    if _NEGATION_RE.search(before) or _DENIAL_RE.search(norm_clause[: cue_at + 4]):
        return "denied"
    if _PLANNED_RE.search(norm_clause):
        return "planned"
    return "reported" if attributed else "asserted"


def is_background(norm_clause: str, cue_at: int = 0, published: datetime | None = None) -> bool:
    """Past events recalled as context raise no alert: a clause that opens as a recollection
    (وكان، بعد), names a date days before ``published`` or "last week", or puts "after ... had"
    right before its event."""
    opening = norm_clause.lstrip("و ")
    if opening.startswith(("كان ", "كانت ", "بعد ", "قبل ", "سبق")):
        return True
    if _RECALL_RE.search(norm_clause) or _dated_before(norm_clause, published):
        return True
    return any(0 <= cue_at - m.end() <= 25 for m in _BACKGROUND_RE.finditer(norm_clause))


def _dated_before(norm_clause: str, published: datetime | None) -> bool:
    if published is None:
        return _NUMERIC_DATE.search(norm_clause) is not None
    # Clamped: a feed's year 1 or 9999 must not overflow the arithmetic.
    on = min(max(published.date(), date.min + timedelta(days=RECALL_DAYS)),
             date.max - timedelta(days=FUTURE_DAYS))
    horizon = on - timedelta(days=RECALL_DAYS)
    latest = on + timedelta(days=FUTURE_DAYS)
    for match in _NUMERIC_DATE.finditer(norm_clause):
        day, month, year = (int(g) for g in match.groups())
        when = _date(year + 2000 if year < 100 else year, month, day)
        if when is not None and when < horizon:
            return True
    for match in _NAMED_DATE.finditer(norm_clause):
        day, month = int(match[1]), _MONTHS[re.sub(r"\s+", " ", match[2])]
        if match[3]:
            when = _date(int(match[3]), month, day)
        else:
            # No year: this year's, unless that is months ahead ("20 ديسمبر" in a January
            # article is last December; "18 نوفمبر" in a November one is a coming date).
            when = _date(published.year, month, day)
            if when is not None and when > latest:
                when = _date(published.year - 1, month, day)
        if when is not None and when < horizon:
            return True
    return False


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass
class Extraction:
    claims: list[Claim]
    entities: Counter[str]  # "town", "actor" and the tagger's LOC, PERS, ORG, MISC


class ClaimExtractor:
    def __init__(self, towns: MonitoredTowns, places: Gazetteer, actors: ActorLexicon,
                 tagger: Tagger | None = None):
        self.towns = towns
        self.places = places
        self.actors = actors
        self.tagger = tagger

    def extract(self, doc: Document) -> list[Claim]:
        return self.analyse(doc).claims

    def analyse(self, doc: Document) -> Extraction:
        """The document's claims, and the entities found in its sentences about monitored towns."""
        # A headline can carry the claim on its own; its offsets are into the title.
        result = Extraction([], Counter())
        if not self.towns.may_name(char_forms(f"{doc.title or ''}\n{doc.text}")):
            return result
        sentences = [*split_sentences(doc.title or ""), *split_sentences(doc.text)]
        seen: set[str] = set()
        try:
            published = parse_time(doc.published)
        except RecordError:
            published = None
        if published is not None and doc.ingested_at:
            # A feed that dates its items in the future must not make today's news look old.
            published = datetime.fromtimestamp(believed_time(published, doc.ingested_at),
                                               timezone.utc)
        for sentence in sentences:
            for claim in self._sentence_claims(doc, sentence, published, result.entities):
                if claim.signature() not in seen:
                    seen.add(claim.signature())
                    result.claims.append(claim)
        return result

    def _sentence_claims(self, doc: Document, sentence: Sentence, published: datetime | None,
                         entities: Counter[str]) -> list[Claim]:
        tokens = tokenize(sentence.text)
        mentions = self.towns.matches(sentence.text, tokens)
        if not mentions:
            return []
        # Only towns of some size count as evidence of a place nearby: thousands of hamlets
        # have names like كسر ("broke") or جديدة ("new").
        places = {m.first_token: m for m in [*self.places.matches(sentence.text, tokens), *mentions]
                  if (m.value.population >= EVIDENCE_POPULATION or m.value.id in self.towns.places)
                  and not is_common_word(tokens, m.first_token, m.end_token)}
        other_places = {i for i, m in places.items() if m.value.id not in self.towns.places}
        tags = self.tagger.tag([t.text for t in tokens]) if self.tagger else None
        towns = []
        for match in mentions:
            use = judge_mention(tokens, match.first_token, match.end_token, set(places), tags)
            if use.real and not use.locator:
                towns.append(match)
        if not towns:
            return []
        actors = self.actors.find(sentence.text, tokens)
        if tags:
            actors = _with_tagged_organisations(sentence.text, tokens, tags, actors)
        entities.update(town=len(towns), actor=len(actors))
        entities.update(tag[2:] for tag in tags or () if tag.startswith("B-"))
        speaker = self._speaker(sentence.text, tokens, actors, tags)
        # A group's name is no event: هيئة تحرير الشام ("liberation") or جيش الفتح ("conquest")
        # must not read as a town taken. The lexicon's own names stay, for "غارات روسية" is one.
        unlexical = [a for a in actors if a.value.id.startswith(DERIVED_PREFIX)]
        text = _blank(sentence.text, unlexical)
        norm_sentence = normalize(text)
        claims = []
        for start, cue_start, end in _clauses(sentence.text):
            norm_clause = normalize(text[start:end])
            found = event_type(norm_clause, norm_sentence)
            if found is None:
                continue
            kind, cue_at = found
            in_clause = [m for m in towns if start <= m.start < end]
            if not in_clause:
                # A clause naming no place at all still speaks of the sentence's town.
                if any(start <= tokens[i].start < end for i in other_places):
                    continue
                in_clause = towns[:1]
            clause_actors = [a for a in actors if cue_start <= a.start < end] or [
                a for a in actors if start <= a.start < end]
            roles = _roles(tokens, clause_actors, kind)
            if kind == "accusation":
                roles = _accused(tokens, clause_actors, speaker) or roles
            for place in dict.fromkeys(m.value for m in in_clause):
                claims.append(Claim(
                    town=place.town(),
                    event_type=kind,
                    actors=tuple(roles),
                    attributed_to=speaker,
                    modality=modality(norm_clause, cue_at, speaker is not None),
                    sentence=sentence.text,
                    doc=doc.ref(),
                    start=sentence.start,
                    end=sentence.end,
                    background=is_background(norm_clause, cue_at, published),
                    published=doc.published,
                    ingested_at=doc.ingested_at,
                ))
        return claims

    def _speaker(self, text: str, tokens: list[Token], actors: list[Match[ActorRef]],
                 tags: list[str] | None) -> Actor | None:
        """Who the sentence is attributed to: the subject right after a reporting cue ("قالت
        وزارة الدفاع الروسية"), or, when a relay passes it on ("نقلت الوكالة عن المتحدث"),
        whoever the relay quotes."""
        for i, token in enumerate(tokens):
            if _REPORTING_RE.fullmatch(token.norm):
                return self._subject(text, tokens, i + 1, actors, tags)
        return None

    def _subject(self, text: str, tokens: list[Token], start: int,
                 actors: list[Match[ActorRef]], tags: list[str] | None) -> Actor | None:
        # A lexicon actor counts only right after the cue (one word such as اليوم may come
        # between): further on it is more often the accused or the object than the speaker.
        near = [a for a in actors if start <= a.first_token <= start + 1]
        if near:
            return Actor(near[0].value.id, near[0].surface)
        span = _tagged_span(tokens, tags, start, ("PERS", "ORG")) if tags else None
        if span is not None:
            surface = text[tokens[span[0]].start : tokens[span[1] - 1].end]
            return Actor(derived_actor_id(surface), surface)
        words: list[Token] = []
        for following in tokens[start : start + 5]:
            if following.norm in _SPEAKER_STOP or not following.norm.isalpha():
                break
            words.append(following)
        end = start + len(words)
        if words and end < len(tokens) and tokens[end].norm == "عن" and len(words) <= 2:
            return self._subject(text, tokens, end + 1, actors, tags)
        # "the spokesman of the coalition": a known actor inside the phrase is whose voice it is.
        inner = next((a for a in actors if start <= a.first_token < end), None)
        if words and inner is not None:
            return Actor(inner.value.id, text[words[0].start : inner.end])
        if words and (words[0].norm.startswith("ال") or words[0].norm in _SOURCE_NOUNS):
            surface = text[words[0].start : words[-1].end]
            return Actor(derived_actor_id(surface), surface)
        return None


def _tagged_span(tokens: list[Token], tags: list[str], start: int,
                 kinds: tuple[str, ...]) -> tuple[int, int] | None:
    """The first PERS/ORG entity starting within three tokens of ``start``."""
    for i in range(start, min(start + 3, len(tokens))):
        if tags[i].startswith("B-") and tags[i][2:] in kinds:
            end = i + 1
            while end < len(tokens) and tags[end] == f"I-{tags[i][2:]}":
                end += 1
            return (i, end) if end - i <= MAX_NAME_TOKENS else None
    return None


def _clauses(text: str) -> list[tuple[int, int, int]]:
    """(start, cue group start, end) of each clause. One or two words between commas ("وضربت،
    السبت، ...") are a verb or a time cut off from what follows, so they join the next piece; a
    longer piece with no event cue is the subject or setting of the next event, so it opens that
    clause, while actors are looked for in the cue's own group first."""
    bounds: list[tuple[int, int, int]] = []
    pieces = _pieces(text)
    clause_start: int | None = None
    group_start: int | None = None
    for index, (start, end) in enumerate(pieces):
        clause_start = start if clause_start is None else clause_start
        group_start = start if group_start is None else group_start
        if len(text[start:end].split()) < 3 and index < len(pieces) - 1:
            continue
        if event_type(normalize(text[group_start:end])) is not None:
            bounds.append((clause_start, group_start, end))
            clause_start = None
        group_start = None
    return bounds


def _pieces(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _CLAUSE_SPLIT.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _roles(tokens: list[Token], actors: list[Match[ActorRef]], kind: str) -> list[Actor]:
    """Agent unless the words before the actor make it the one hit or dislodged: "positions of
    ISIS", "against", "liberated from ISIS"."""
    out: dict[str, Actor] = {}
    for match in actors:
        before = [t for t in tokens[max(0, match.first_token - 3) : match.first_token]
                  if t.norm.isalpha()][-2:]
        if before and _possessor(tokens, match):
            continue
        forms = {form for t in before for form, _ in clitic_forms(t.norm)}
        own = tokens[match.first_token].norm
        possessed = own[:1] == "ل" and not normalize(match.surface).startswith("ل")
        # "from ISIS", "from the grip of ISIS": the one who lost the town or fled it.
        freed_from = kind in ("territory_control", "withdrawal") and bool(before) and (
            before[-1].norm == "من" or (len(before) == 2 and before[0].norm == "من"
                                        and before[1].norm in _GRIP))
        target = possessed or freed_from or bool(forms & _TARGET_SET)
        if match.value.id == "civilians":
            target = True  # civilians suffer events in these reports; they do not wage them
        role = "target" if target else "agent"
        current = out.get(match.value.id)
        if current is None or (current.role == "target" and role == "agent"):
            out[match.value.id] = Actor(match.value.id, match.surface, role)
    return list(out.values())


def _possessor(tokens: list[Token], match: Match[ActorRef]) -> bool:
    """"تحالفات داعش" (ISIS's alliances), "قيادة التنظيم": the actor right after a noun in the
    construct state owns something; it neither acts nor is hit. Such nouns end in ات or a teh
    marbuta and carry no article, which verbs rarely do."""
    if match.first_token == 0:
        return False
    previous = tokens[match.first_token - 1]
    stem = clitic_forms(previous.norm)[-1][0]
    # The teh marbuta is read from the original spelling: normalised, it looks like the ه that
    # ends verbs such as توجه.
    noun_ending = previous.text.endswith(("ة", "ات"))
    return (len(stem) >= 4 and not stem.startswith("ال") and noun_ending
            and stem not in _TARGET_SET)


def _accused(tokens: list[Token], actors: list[Match[ActorRef]],
             speaker: Actor | None) -> list[Actor]:
    """In an accusation the agent is the accused: the first actor after the accusing word who is
    not the accuser. What the accused allegedly did to others ("supporting ISIS") is not an act
    of theirs to alert on."""
    accusing = _CUE_RES["accusation"]
    cue = next((i for i, t in enumerate(tokens) if accusing.match(t.norm)), None)
    if cue is None:
        return []
    for match in actors:
        if match.first_token > cue and (speaker is None or match.value.id != speaker.id):
            return [Actor(match.value.id, match.surface, "agent")]
    return []


def _blank(text: str, spans: list[Match[ActorRef]]) -> str:
    """``text`` with the spans' characters replaced, offsets unchanged."""
    for span in spans:
        text = text[:span.start] + "x" * (span.end - span.start) + text[span.end:]
    return text


def _with_tagged_organisations(text: str, tokens: list[Token], tags: list[str],
                               actors: list[Match[ActorRef]]) -> list[Match[ActorRef]]:
    """Armed groups the lexicon does not know ("حركة أحرار الشام") come from the tagger's ORG
    spans that name a fighting body; they keep their surface name and an id derived from it.
    Other organisations (the UN, a news agency) report events, they do not wage them."""
    known = {i for a in actors for i in range(a.first_token, a.end_token)}
    found = list(actors)
    i = 0
    while i < len(tokens):
        if tags[i] != "B-ORG":
            i += 1
            continue
        end = i + 1
        while end < len(tokens) and tags[end] == "I-ORG":
            end += 1
        armed = any(form in _ARMED_GROUP_WORDS for t in tokens[i:end] for form, _ in clitic_forms(t.norm))
        if armed and end - i <= MAX_NAME_TOKENS and not known & set(range(i, end)):
            start, stop = tokens[i].start, tokens[end - 1].end
            surface = text[start:stop]
            found.append(Match(start, stop, surface, ActorRef(derived_actor_id(surface), surface),
                               i, end))
        i = end
    return sorted(found, key=lambda m: m.first_token)
