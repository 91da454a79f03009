"""A labelled set for deduplication, built from the real articles of the shared corpus.

Nothing of the corpus is stored in the repository: this module rebuilds the set from
``../shared/data/corpus/jawharafm-ant-v1.1.jsonl.gz`` with a fixed seed, so the evaluation
(scripts/eval_dedup.py) is reproducible.

For a sample of real articles it makes:
- copies, as syndicating sites make them: a new title (sometimes printed in the text), headers
  ("خبر عاجل", breadcrumbs, datelines, site names), bylines, photo and share counters, "اقرأ أيضا"
  blocks with headlines of other real articles, aggregator footers, spelling variants (hamza
  forms of alef, teh marbuta, alef maksura, tatweel, diacritics, Arabic-Indic digits, «» for ""),
  a dropped paragraph or sentence, a cut ending, re-wrapped lines;
- updates: the article plus one substantive addition: a paragraph of another real article, a
  real sentence with a figure or a statement from another article, one of its own sentences
  with a new figure ("the toll rose to ..."), or a one-line denial or confirmation; some also
  get a portal's furniture;
- different stories: the lead of another real article of the same section followed by the
  article's background (everything after its lead), i.e. other news sharing whole paragraphs.

Natural near-duplicate pairs of the corpus are not generated: they are labelled by hand in
tests/data/dedup/natural_pairs.jsonl, and the documents involved are kept out of the stream
background (their relations are unknown), see ``natural_overlaps``.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from zlib import crc32

from marsad.records import Document, RecordError, parse_time
from processors.normalize import normalize
from processors.sentences import split_sentences

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPUS = SHARED / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"

SITES = [("بوابة أخبار مصر", "masr news"), ("موقع بيلست الإخباري", "pelest news"),
         ("سيريانيوز", "syria news"), ("الخليج الجديد", "alkhaleej"), ("عربي 21", "arabi21"),
         ("المصدر نيوز", "almasdar"), ("صدى البلد", "elbalad"), ("شبكة الأخبار العربية", "anntv"),
         ("وكالة أنباء الشرق", "east news"), ("أخبار تونس الآن", "tunisie now")]
NAMES = ["وليد عبد الرحيم", "محمد بن علي", "سارة الهاشمي", "أحمد المنصوري", "ليلى بوزيد",
         "خالد العتيبي", "منى الطرابلسي", "يوسف الشريف"]
WEEKDAYS = ["الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"]
MONTHS = ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر",
          "أكتوبر", "نوفمبر", "ديسمبر"]
TEASER_HEADERS = ["اقرأ أيضا", "قد تقرأ أيضا", "اقرأ أيضاً:", "طالع أيضا", "أخبار ذات صلة",
                  "اقرأ ايضا", "قد يهمك أيضا", "مواضيع قد تهمك", "إقرأ المزيد", "الأكثر قراءة",
                  "ننصحك بقراءة", "شاهد أيضاً", "روابط ذات صلة"]
UPDATE_LEADS = ["وفي تطور جديد، ", "وفي وقت لاحق، ", "وفي آخر المستجدات، ", "", "", ""]
SHORT_ACTORS = ["الوزارة", "وزارة الداخلية", "الحكومة", "النيابة العمومية", "الإدارة",
                "الجامعة", "الشركة", "الرئاسة"]
TOLL_NOUNS = ["القتلى", "الجرحى", "المصابين", "الموقوفين", "الضحايا", "المتضررين", "المفقودين"]
INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_SPEECH = re.compile(r"^\W*(و|ف)?(قال|قالت|أكد|أكدت|نفى|نفت|أوضح|أوضحت|صرح|صرّح|أعلن|أعلنت|كشف|كشفت|"
                     r"حذر|حذّر|اعتبر|اعتبرت|أفاد|أفادت)")
# A figure, not a year or a date/time part.
_FIGURE = re.compile(r"(?<![\d/:.])(?!(?:19|20)\d\d(?!\d))\d{1,5}(?![\d/:.])")


@dataclass(frozen=True)
class Item:
    """One generated document b and what it is relative to its base article a."""

    doc: Document
    base: str  # id of a
    label: str  # "copy", "update" or "different"
    change: str  # which transformations made it


def load_corpus(path: Path = CORPUS) -> list[Document]:
    """The corpus in published order. Unreadable dates (the corpus has some, like
    '0101-20-17') become unknown, and an undated article takes the time of the one before it,
    so the window's clock stays in 2016-2017."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            data = json.loads(line)
            if not data.get("text", "").strip():
                continue
            try:
                when = parse_time(data.get("published"))
            except RecordError:
                when = None
            data["published"] = when.isoformat() if when and when.year > 2000 else None
            rows.append(data)
    previous = "2016-01-01T00:00:00+00:00"
    for data in rows:
        data["published"] = data["published"] or previous
        previous = data["published"]
    rows.sort(key=lambda data: data["published"])
    return [Document.from_dict(dict(data, ingested_at=1.9e9)) for data in rows]


def _shingles(text: str) -> set[int]:
    words = re.findall(r"\w+", normalize(text))
    return {crc32(" ".join(words[i:i + 3]).encode()) for i in range(max(1, len(words) - 2))}


def natural_overlaps(docs: list[Document], containment: float = 0.3) -> list[tuple[str, str, float]]:
    """Pairs of corpus articles where one contains at least ``containment`` of the other's word
    3-shingles: candidates for hand labelling, and documents to keep out of the background.
    Independent of processors.dedup (plain normalised words, exact sets, an inverted index on a
    sample of shingles)."""
    sets = [_shingles(doc.text) for doc in docs]
    postings: dict[int, list[int]] = defaultdict(list)
    for index, shingles in enumerate(sets):
        for shingle in shingles:
            if shingle % 4 == 0:
                postings[shingle].append(index)
    seen: set[tuple[int, int]] = set()
    pairs = []
    for holders in postings.values():
        if len(holders) > 60:  # a formula every article uses
            continue
        for i, a in enumerate(holders):
            for b in holders[i + 1:]:
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                common = len(sets[a] & sets[b])
                score = common / min(len(sets[a]), len(sets[b]))
                if score >= containment:
                    pairs.append((docs[a].id, docs[b].id, score))
    return pairs


# -- copies ------------------------------------------------------------------------------------

def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.splitlines() if p.strip()]


def _sentences(paragraph: str) -> list[str]:
    return [s.text for s in split_sentences(paragraph)]


def _date_line(rng: random.Random, when: datetime) -> str:
    forms = [
        f"نشر {WEEKDAYS[when.weekday()]} {when.day:02d} {MONTHS[when.month - 1]}, {when.year} "
        f"في تمام الساعة {when.hour:02d}:{when.minute:02d}",
        f"{when.day:02d}.{when.month:02d}.{when.year} {when.hour:02d}:{when.minute:02d}",
        f"آخر تحديث: {when.day:02d}/{when.month:02d}/{when.year} - {when.hour:02d}:{when.minute:02d}",
        f"{WEEKDAYS[when.weekday()]} {when.year}/{when.month:02d}/{when.day:02d}",
    ]
    return rng.choice(forms)


def _new_title(rng: random.Random, doc: Document) -> str:
    title = doc.title or ""
    lead = " ".join(doc.text.split()[: rng.randint(7, 12)]).rstrip("،,.:")
    options = [f"عاجل | {title}", f"{title} (فيديو)", lead, f"بالتفاصيل.. {title}", title + "!"]
    return rng.choice([o for o in options if o.strip(" |.!()")] or [lead])


def _spelling(rng: random.Random, text: str) -> str:
    """Variants sites really differ by; all of them are normalised away by processors.normalize
    except tatweel placement inside words, which it drops too."""
    def word(match: re.Match[str]) -> str:
        w = match.group()
        if rng.random() < 0.5:
            w = re.sub("[أإآ]", "ا", w)
        elif rng.random() < 0.1 and w.startswith("ا") and len(w) > 3:
            w = "أ" + w[1:]
        if rng.random() < 0.3:
            w = re.sub("ة$", "ه", w)
        if rng.random() < 0.3:
            w = re.sub("ى$", "ي", w) if w.endswith("ى") else re.sub("ي$", "ى", w)
        if len(w) > 3 and rng.random() < 0.04:
            cut = rng.randint(1, len(w) - 2)
            w = w[:cut] + "ـ" + w[cut:]
        if rng.random() < 0.04:
            w = w[:-1] + w[-1] + rng.choice("ًٌٍَُِّْ")
        return w

    text = re.sub(r"[\u0621-\u064A]+", word, text)
    if rng.random() < 0.3:
        text = text.translate(INDIC)
    if rng.random() < 0.4:
        text = re.sub(r"«([^»]*)»", r'"\1"', text) if "«" in text else re.sub(r'"([^"]*)"', r"«\1»", text)
    if rng.random() < 0.3:
        text = re.sub(r"(?<!\S)و(?=[\u0621-\u064A]{3,})", "و ", text, count=rng.randint(1, 4))
    return text


def _rewrap(rng: random.Random, paragraphs: list[str]) -> list[str]:
    style = rng.choice(["wrap", "sentences", "merge"])
    if style == "merge":
        return [" ".join(paragraphs)]
    if style == "sentences":
        return [s for p in paragraphs for s in _sentences(p)]
    width = rng.randint(60, 90)
    lines = []
    for paragraph in paragraphs:
        current = ""
        for word in paragraph.split():
            if current and len(current) + len(word) + 1 > width:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}".strip()
        if current:
            lines.append(current)
    return lines


def make_copy(rng: random.Random, doc: Document, others: list[Document], when: datetime,
              source: str, lossless: bool = False) -> Item:
    """A syndicated copy; ``lossless`` keeps every sentence (for dressing up an update)."""
    changes: list[str] = []
    paragraphs = _paragraphs(doc.text)
    sentences = [s for p in paragraphs for s in _sentences(p)]
    if not lossless and rng.random() < 0.3:
        if len(paragraphs) >= 3:
            del paragraphs[rng.randrange(1, len(paragraphs))]
            changes.append("dropped_paragraph")
        elif len(sentences) >= 4:
            drop = sentences[rng.randrange(1, len(sentences) - 1)]
            paragraphs = [p.replace(drop, "").strip() for p in paragraphs]
            paragraphs = [p for p in paragraphs if p]
            changes.append("dropped_sentence")
    if not lossless and rng.random() < 0.3 and len(sentences) >= 3:
        keep = max(2, round(len(sentences) * rng.uniform(0.6, 0.9)))
        last = sentences[keep - 1]
        text = "\n".join(paragraphs)
        cut = text.find(last)
        if cut > 0:
            paragraphs = _paragraphs(text[: cut + len(last)])
            changes.append("cut_ending")
    if rng.random() < 0.3:
        paragraphs = _rewrap(rng, paragraphs)
        changes.append("rewrapped")
    body = "\n".join(paragraphs)
    if rng.random() < 0.6:
        body = _spelling(rng, body)
        changes.append("spelling")
    title = _new_title(rng, doc)
    site, latin = rng.choice(SITES)
    head: list[str] = []
    tail: list[str] = []
    if rng.random() < 0.4:
        head.append(title)
        changes.append("title_in_text")
    if rng.random() < 0.5:
        options = ["خبر عاجل", "عاجل", f"أخبار العالم / {site}", "الرئيسية > أخبار محلية",
                   _date_line(rng, when), f"{latin} - {site}", "مباشر", "حصري",
                   f"{site} | متابعات", f"منذ {rng.randint(2, 9)} ساعات", f"تونس - {site}"]
        head[0:0] = rng.sample(options, rng.randint(1, 2))
        changes.append("header")
    if rng.random() < 0.3:
        name = rng.choice(NAMES)
        head.append(rng.choice([f"- {name}", f"بقلم: {name}", f"كتب: {name}", f"المصدر: {site}",
                                f"إعداد: {name}", f"{name} - {site}", f"مراسل {site}"]))
        changes.append("byline")
    if rng.random() < 0.2:
        n = rng.randint(3, 8)
        head.extend(rng.choice([[f"• {i}/{n}" for i in range(1, n + 1)],
                                [str(rng.randint(0, 9)), str(rng.randint(10, 400))]]))
        changes.append("counters")
    lines = _paragraphs(body)
    if rng.random() < 0.4:
        teasers = [rng.choice(TEASER_HEADERS)] + [
            ("• " if rng.random() < 0.3 else "") + (o.title or " ".join(o.text.split()[:9]))
            for o in rng.sample(others, rng.randint(2, 4))]
        if len(lines) >= 2 and rng.random() < 0.4:
            at = rng.randrange(1, len(lines))
            lines[at:at] = teasers
        else:
            tail.extend(teasers)
        changes.append("teasers")
    if rng.random() < 0.4:
        tail.append(rng.choice([
            f"انت الان تتصفح خبر بعنوان {title} ونحن فى {site} لا نتحمل أى مسؤولية تجاه هذا الخبر "
            f"ويمكن الرجوع الى المصدر الاصلي للخبر من هنا {doc.source or 'المصدر'}",
            "تابعونا على فيسبوك وتويتر",
            f"جميع الحقوق محفوظة © {site} {when.year}",
            "شارك هذا الخبر: فيسبوك تويتر واتساب",
            site,
            _date_line(rng, when),
            "لمزيد من الأخبار تابعوا صفحتنا على فيسبوك",
            f"حمل تطبيق {site} على هاتفك",
            "المصدر: وكالات",
            f"هذا الخبر منقول من {doc.source or 'المصدر'}",
            f"© {site}",
            "أضف تعليقك",
            "كلمات مفتاحية: تونس، أخبار، سياسة",
        ]))
        changes.append("footer")
    text = "\n\n".join(head + lines + tail) if rng.random() < 0.5 else "\n".join(head + lines + tail)
    new = Document.from_dict({"id": f"{doc.id}~copy{rng.randrange(10**6)}", "text": text,
                              "title": title, "source": source, "published": when.isoformat(),
                              "ingested_at": 1.9e9})
    return Item(new, doc.id, "copy", "+".join(changes) or "title_only")


# -- updates and different stories -------------------------------------------------------------

def _figure_sentence(rng: random.Random, doc: Document, others: list[Document]) -> tuple[str, str]:
    own = [s for s in _sentences(doc.text.replace("\n", " ")) if _FIGURE.search(s) and len(s.split()) >= 6]
    if own and rng.random() < 0.4:
        sentence = rng.choice(own)
        old = [int(x) for x in _FIGURE.findall(sentence)]
        numbers = set(_FIGURE.findall(doc.text))
        new_value = next(str(v) for v in (old[0] + rng.randint(2, 40) for _ in range(100))
                         if str(v) not in numbers)
        changed = _FIGURE.sub(new_value, sentence, count=1)
        return "وفي حصيلة جديدة، " + changed.lstrip("و "), "new_figure_own"
    numbers = set(_FIGURE.findall(doc.text))
    if rng.random() < 0.5:
        value = next(v for v in (str(rng.randint(3, 250)) for _ in range(100)) if v not in numbers)
        noun = rng.choice(TOLL_NOUNS)
        return rng.choice([
            f"وفي حصيلة محينة، ارتفع عدد {noun} إلى {value}.",
            f"وأكد مصدر رسمي في وقت لاحق أن عدد {noun} بلغ {value}.",
            f"وأفادت آخر المعطيات بأن عدد {noun} وصل إلى {value} حسب مصادر محلية.",
        ]), "new_figure_template"
    for other in rng.sample(others, min(200, len(others))):
        for s in _sentences(other.text.replace("\n", " ")):
            figures = [f for f in _FIGURE.findall(s) if f not in numbers]
            if figures and 8 <= len(s.split()) <= 40 and not re.search(r"\b(19|20)\d\d\b", s):
                return s, "new_figure_borrowed"
    raise LookupError("no figure sentence")


def _statement_sentence(rng: random.Random, others: list[Document]) -> str:
    for other in rng.sample(others, min(300, len(others))):
        for s in _sentences(other.text.replace("\n", " ")):
            if _SPEECH.match(s) and 8 <= len(s.split()) <= 40:
                return s
    raise LookupError("no statement sentence")


def make_update(rng: random.Random, doc: Document, others: list[Document], when: datetime,
                source: str) -> Item:
    paragraphs = _paragraphs(doc.text)
    kind = rng.choice(["paragraph", "figure", "statement", "short_statement"])
    if kind == "short_statement":
        # A one-line development that reuses the story's own words: a denial or a confirmation.
        actor = rng.choice(SHORT_ACTORS)
        addition = rng.choice([f"ونفت {actor} ذلك في وقت لاحق.", f"وأكدت {actor} الخبر لاحقا.",
                               f"من جهتها، نفت {actor} صحة هذه الأنباء.",
                               f"وأعلنت {actor} فتح تحقيق في الحادثة."])
    elif kind == "paragraph":
        other = rng.choice([o for o in rng.sample(others, 20) if len(o.text.split()) >= 25] or others)
        sentences = _sentences(other.text.replace("\n", " "))
        addition = rng.choice(UPDATE_LEADS) + " ".join(sentences[: rng.randint(1, 2)])
    elif kind == "figure":
        addition, kind = _figure_sentence(rng, doc, others)
    else:
        addition = _statement_sentence(rng, others)
    where = rng.random()
    if where < 0.5:
        paragraphs.append(addition)
    elif where < 0.8 or len(paragraphs) < 2:
        paragraphs.insert(0, addition)
    else:
        paragraphs.insert(1, addition)
    text = "\n".join(paragraphs)
    item = Document.from_dict({"id": f"{doc.id}~update{rng.randrange(10**6)}", "text": text,
                               "title": _new_title(rng, doc), "source": source,
                               "published": when.isoformat(), "ingested_at": 1.9e9})
    if rng.random() < 0.5:
        # Updates are syndicated too: the furniture must not hide the new paragraph.
        dressed = make_copy(rng, item, others, when, source, lossless=True).doc
        item = replace(dressed, id=item.id)
        kind += "+dressed"
    return Item(item, doc.id, "update", kind)


def make_different(rng: random.Random, doc: Document, others: list[Document], when: datetime,
                   source: str) -> Item | None:
    """Another story that reuses this one's background: the lead of another article of the same
    section, then everything of this article after its lead."""
    sentences = _sentences(doc.text.replace("\n", "\n "))
    if len(sentences) < 3:
        return None
    lead_length = 1 if len(sentences) < 5 else 2
    background = doc.text[doc.text.find(sentences[lead_length]):]
    own = _shingles(doc.text)
    same_section = [o for o in rng.sample(others, min(50, len(others)))
                    if o.title and o.id != doc.id and len(o.text.split()) >= 25]
    for other in same_section:
        sentences = [s for s in _sentences(other.text.replace("\n", " ")) if len(s.split()) >= 5]
        lead = " ".join(sentences[: rng.randint(1, 2)])
        # The new lead must really be other news, not the same story told by another desk.
        if len(lead.split()) >= 12 and len(_shingles(lead) & own) < 0.2 * len(_shingles(lead)):
            break
    else:
        return None
    text = lead + ("\n" if rng.random() < 0.7 else " ") + background
    new = Document.from_dict({"id": f"{doc.id}~different{rng.randrange(10**6)}", "text": text,
                              "title": other.title, "source": source,
                              "published": when.isoformat(), "ingested_at": 1.9e9})
    return Item(new, doc.id, "different", f"lead_of:{other.id}")


def build(docs: list[Document], excluded: set[str], seed: int = 6, copies: int = 600,
          updates: int = 300, differents: int = 300) -> list[Item]:
    """Generated documents for a sample of base articles (at least 30 words, not part of a
    natural overlap), each published after its base within two days."""
    rng = random.Random(seed)
    pool = [d for d in docs if d.id not in excluded and len(d.text.split()) >= 30]
    by_section: dict[str, list[Document]] = defaultdict(list)
    section = {d.id: (d.id.split("-")[1] if d.id.count("-") >= 2 else "") for d in docs}
    for d in pool:
        by_section[section[d.id]].append(d)
    items: list[Item] = []
    sources = [name for name, _ in SITES]

    def when(base: Document) -> datetime:
        start = datetime.fromisoformat(base.published or "2017-01-01T00:00:00+00:00")
        return start + timedelta(minutes=rng.randint(5, 2 * 24 * 60))

    position = {d.id: k for k, d in enumerate(pool)}

    def earlier(base: Document, among: list[Document]) -> list[Document]:
        # Material for updates and other stories comes from articles published before the base:
        # an article reused later in the stream would itself be covered by what reused it.
        return [d for d in among if position[d.id] < position[base.id]]

    bases = rng.sample(pool, copies // 2)
    for base in bases:
        # Syndication comes in bursts: one to three copies of a story.
        for _ in range(rng.choice([1, 1, 2, 3])):
            if sum(i.label == "copy" for i in items) >= copies:
                break
            items.append(make_copy(rng, base, pool, when(base), rng.choice(sources)))
    for base in rng.sample(pool[500:], updates):
        items.append(make_update(rng, base, pool[: position[base.id]], when(base),
                                 rng.choice(sources)))
    made = 0
    for base in rng.sample(pool[500:], len(pool) - 500):
        if made >= differents:
            break
        item = make_different(rng, base, earlier(base, by_section[section[base.id]]), when(base),
                              rng.choice(sources))
        if item is not None:
            items.append(item)
            made += 1
    return items


def stream(docs: list[Document], excluded: set[str], items: Iterable[Item]) -> list[Document]:
    """The background corpus (minus natural overlaps) with the generated documents, in
    published order: what the stage would see."""
    merged = [d for d in docs if d.id not in excluded] + [i.doc for i in items]
    return sorted(merged, key=lambda d: parse_time(d.published) or datetime.min)
