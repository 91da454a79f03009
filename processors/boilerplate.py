"""What a syndicating site wraps around a story, found so deduplication can look past it.

Aggregators and portals republish wire stories with their own furniture: a "خبر عاجل" header,
breadcrumbs and datelines, bylines, photo counters ("1/7"), share buttons, an "اقرأ أيضا" block of
teaser headlines for *other* stories, and footers such as "انت الان تتصفح خبر بعنوان ...". None
of it is news, and the teaser headlines are worse than noise: they would make a plain copy look as
if it added new events. ``story_sentences`` returns the sentences of a text that are the story
itself, normalised, with offsets into the original text so callers can still quote them.

Rules match the normalised form (processors.normalize, via ``matching_form``), so "اقرأ أيضاً" and "اقرا ايضا" are one
pattern. They are deliberately conservative: a line is only furniture when its shape says so
(short, no sentence punctuation, at the edges of the text, or after a teaser header); a line that
reads like a sentence is always kept.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from processors.normalize import normalize_char
from processors.sentences import split_sentences

# A line that says nothing in letters: counters ("36", "1/7"), dates, times, separators.
_NO_LETTERS = re.compile(r"^[\W\d_]*$")
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_MARKS = frozenset(".!?؟؛…:")
_CLOSERS = "'\"»”’)] \t"

_BREAKING = re.compile(r"^(خبر\s+|اخبار\s+)?عاجل(ه|\s+جدا)?\W*$|^breaking(\s+news)?\W*$", re.I)
# "عاجل: ..." or "عاجل | ..." in front of a real sentence: only the label goes.
_BREAKING_PREFIX = re.compile(r"^\W*(خبر\s+)?عاجل\s*[:|\-–—]+\s*")

# A short line with one of these words, above headlines of other stories, announces them.
_TEASER_WORDS = frozenset("""ايضا المزيد صله تهمك يهمك يعجبك تعجبك قراءه بقراءه اقرا تقرا مشابهه
متعلقه مقترحه مختارات روابط""".split())
_TEASER_HEADER_WORDS = 5
_TEASER_HEADER = re.compile(
    r"^\W*(قد\s+)?(اقرا|تقرا|يقرا|اقرئي|طالع|شاهد|تشاهد|تابع)\s+(ايضا|كذلك|المزيد)"
    r"|^\W*(اخبار|مواضيع|مقالات|قصص)\s+(ذات\s+صله|متعلقه|مشابهه|مقترحه)"
    r"|^\W*(الاكثر\s+(قراءه|مشاهده)|المزيد\s+من\s+الاخبار|اخترنا\s+لك|قد\s+يهمك|قد\s+يعجبك|ربما\s+يعجبك)"
    r"|^\W*(read\s+(also|more)|related(\s+(news|articles))?)\b",
    re.I,
)

# Sentences an aggregator appends about itself; everything from the match to the end of the line.
_FOOTER = re.compile(
    r"انت\s+الان\s+تتصفح"
    r"|(ونحن|نحن)\s+(في|فى)\s+.{0,80}?لا\s+نتحمل"
    r"|لا\s+نتحمل\s+(اي|أي)\s+مسؤوليه"
    r"|يمكن(ك|كم)?\s+(الرجوع|قراءه|متابعه)\s+.{0,40}?(المصدر|الموقع)"
    r"|(هذا\s+)?(الخبر|المقال)\s+(منقول|نقلا)\s+(من|عن)"
    r"|تم\s+نشر\s+(هذا\s+)?(الخبر|المقال)\s+(علي|في|بواسطه)"
    r"|(تابعونا|تابعوا\s+اخبارنا|تابعنا)\s+(علي|عبر)"
    r"|(حمل|حملوا|نزل)\s+تطبيق"
    r"|اشترك\s+(في|فى)\s+(قناتنا|نشرتنا|خدمه)"
    r"|جميع\s+الحقوق\s+محفوظه"
    r"|(لمزيد|للمزيد)\s+من\s+(الاخبار|التفاصيل|المعلومات)"
    r"|(تابعوا|تابعونا|تابعنا|تابع)\s+(صفحتنا|صفحه|قناتنا|حسابنا)"
    r"|^\W*(كلمات\s+مفتاحيه|الكلمات\s+المفتاحيه|الوسوم|وسوم|tags)\b",
)

# Every _FOOTER pattern has one of these: a cheap test before the costly one on long lines.
_FOOTER_KEYS = ("تتصفح", "نتحمل", "يمكن", "منقول", "نقلا", "نشر", "تابع", "تطبيق", "اشترك",
                "محفوظه", "لمزيد", "للمزيد", "مفتاحيه", "وسوم", "tags")
_DATELINE_START = re.compile(
    r"^\W*(نشر|نشرت|تم\s+النشر|تاريخ\s+النشر|اخر\s+تحديث|تحديث|محدث|بتاريخ|منذ)\b"
)
_BYLINE = re.compile(
    r"^\W*(بقلم|كتب|كتبت|كتبه|اعداد|تحرير|تقرير|متابعه|ترجمه|المحرر|مراسل|مراسلنا|المصدر|مصدر\s+الخبر"
    r"|حرر|by|source)\b",
    re.I,
)
_SHARE_LINE = re.compile(r"^\W*(شارك|شاركوا|انشر|مشاركه)\s+(هذا\s+|هذه\s+)?(الخبر|المقال|المقاله|الموضوع|الصفحه|علي)")
_DASH_BYLINE = re.compile(r"^[-–—]\s*\w+(\s+\w+){0,3}$")
_MEDIA_CAPTION = re.compile(r"^\W*(صوره|الصوره|صور|بالصور|فيديو|بالفيديو|شاهد\s+الفيديو|photo|video)\b", re.I)
_DATE_WORDS = frozenset(
    "الاثنين الثلاثاء الاربعاء الخميس الجمعه السبت الاحد يوم في تمام الساعه ساعه ساعات دقيقه دقائق "
    "منذ نشر بتاريخ اخر تحديث ص م صباحا مساء am pm gmt utc "
    "يناير فبراير مارس ابريل مايو يونيو يوليو اغسطس سبتمبر اكتوبر نوفمبر ديسمبر "
    "جانفي فيفري افريل ماي جوان جويليه اوت "
    "كانون الثاني شباط اذار نيسان ايار حزيران تموز اب ايلول تشرين الاول".split()
)
_SHARE_WORDS = frozenset(
    "شارك شاركها مشاركه المشاركه انشر فيسبوك فيس بوك تويتر واتساب واتس اب تلغرام تليجرام انستغرام "
    "لينكدان لينكد ان جوجل بلس طباعه ارسال ايميل البريد تعليق تعليقات التعليقات مشاهده مشاهدات "
    "قراءه عدد share tweet facebook twitter whatsapp telegram email print pin linkedin google "
    "comments views".split()
)
# Above the lead paragraph, lines this short are labels, outlet names or bylines; headlines
# are longer. Below the last sentence only signatures this short are dropped.
_HEADER_WORDS = 6
_FOOTER_WORDS = 4
_SHORT_LINE_WORDS = 12
_HEADLINE_WORDS = 20


class _CharForms(dict[int, str]):
    """Code point -> its matching form, filled on first sight (a str.translate table)."""

    def __missing__(self, code: int) -> str:
        form = normalize_char(chr(code))
        self[code] = form
        return form


_CHAR_FORMS = _CharForms()


def matching_form(text: str) -> str:
    """processors.normalize.normalize, three times faster: that normalisation is character by
    character (its normalize_char), so after composing decomposed letters (NFC) one translate
    does it; the only difference is that bidi marks are dropped too. Deduplication runs it on
    every sentence of every document."""
    return " ".join(unicodedata.normalize("NFC", text).translate(_CHAR_FORMS).split())


def _words(norm: str) -> list[str]:
    return _WORD.findall(norm.lower())


def _is_sentence(line: str) -> bool:
    """Ends like a sentence (closing quotes and brackets aside), unlike headlines and labels."""
    return line.rstrip(_CLOSERS)[-1:] in _SENTENCE_MARKS


@dataclass(frozen=True)
class StorySentence:
    start: int  # offsets into the original text
    end: int
    norm: str  # processors.normalize form


@dataclass(frozen=True)
class _Line:
    sentences: tuple[StorySentence, ...]
    norm: str
    words: int

    @property
    def is_sentence(self) -> bool:
        return _is_sentence(self.norm)


def _lines(text: str) -> Iterator[_Line]:
    """Non-empty lines, each cut into sentences normalised once (the costly step, shared with the
    caller)."""
    offset = 0
    for raw in text.splitlines(keepends=True):
        sentences = tuple(
            StorySentence(offset + s.start, offset + s.end, matching_form(s.text))
            for s in split_sentences(raw)
        )
        offset += len(raw)
        norm = " ".join(s.norm for s in sentences if s.norm)
        if norm:
            yield _Line(sentences, norm, len(norm.split()))


def _is_furniture(line: _Line, title: str) -> bool:
    """A whole line that is never news, wherever it stands."""
    norm = line.norm
    if _NO_LETTERS.match(norm) or _BREAKING.match(norm):
        return True
    if title and norm.strip(" :|-–—") == title:
        return True
    if line.words > _SHORT_LINE_WORDS or line.is_sentence:
        return False
    words = _words(norm)
    if all(w in _SHARE_WORDS or w.isdigit() for w in words) or _SHARE_LINE.match(norm):
        return True
    if _DATELINE_START.match(norm) or all(w in _DATE_WORDS or w.isdigit() for w in words):
        return True
    if len(words) <= 6 and (_BYLINE.match(norm) or _MEDIA_CAPTION.match(norm)
                            or _DASH_BYLINE.match(norm)):
        return True
    # Breadcrumbs: "أخبار العالم / مصر العربية", "الرئيسية > سياسة".
    return len(words) <= 8 and bool(re.search(r"\s[/>»|]\s", norm))


def _is_teaser_header(line: _Line) -> bool:
    if _TEASER_HEADER.match(line.norm):
        return True
    return (line.words <= _TEASER_HEADER_WORDS and not line.norm.endswith(".")
            and any(w in _TEASER_WORDS for w in _words(line.norm)))


def story_sentences(text: str, title: str | None = None) -> list[StorySentence]:
    """The sentences of the story's own lines in ``text``, furniture left out."""
    norm_title = matching_form(title or "")
    kept: list[_Line] = []
    seen: set[str] = set()
    in_teasers = False
    for line in _lines(text):
        if _is_teaser_header(line):
            in_teasers = True
            continue
        if in_teasers:
            # Teaser headlines follow their header until the story (or its footer) resumes.
            # Headlines end in "!", "؟" or ".." as often as not; a paragraph in a full stop.
            end = line.norm.rstrip(_CLOSERS)
            if line.words <= _HEADLINE_WORDS and (not end.endswith(".") or end.endswith("..")):
                continue
            in_teasers = False
        # A headline printed twice (page title, then article title) is one headline.
        if line.norm in seen or _is_furniture(line, norm_title):
            continue
        seen.add(line.norm)
        sentences = list(line.sentences)
        # An aggregator's note about itself ends the line it starts in.
        if any(key in line.norm for key in _FOOTER_KEYS) and _FOOTER.search(line.norm):
            footer = next((i for i, s in enumerate(sentences) if _FOOTER.search(s.norm)),
                          len(sentences) - 1)
            del sentences[footer:]
        if sentences and (prefix := _BREAKING_PREFIX.match(sentences[0].norm)):
            sentences[0] = _drop_prefix(text, sentences[0], prefix.end())
        sentences = [s for s in sentences if s.norm]
        if sentences:
            norm = " ".join(s.norm for s in sentences)
            kept.append(_Line(tuple(sentences), norm, len(norm.split())))
    return [sentence for line in _trim_edges(kept) for sentence in line.sentences]


def _trim_edges(kept: list[_Line]) -> list[_Line]:
    """Site names, section labels and bylines sit in short lines above the lead paragraph;
    signatures ("سيريانيوز", "المصدر: وكالات") in shorter ones below the last sentence."""
    lead = next((i for i, line in enumerate(kept) if line.words > _SHORT_LINE_WORDS), len(kept))
    body = [line for line in kept[:lead]
            if line.words > _HEADER_WORDS or line.norm.rstrip(_CLOSERS).endswith(".")] + kept[lead:]
    while body and not body[-1].is_sentence and body[-1].words <= _FOOTER_WORDS:
        body.pop()
    return body


def _drop_prefix(text: str, sentence: StorySentence, norm_end: int) -> StorySentence:
    original = text[sentence.start:sentence.end]
    cut = _original_offset(original, norm_end)
    return StorySentence(sentence.start + cut, sentence.end, sentence.norm[norm_end:])


def _original_offset(line: str, norm_index: int) -> int:
    """The offset in ``line`` where its normalised form reaches ``norm_index`` characters.

    Normalisation only drops characters (diacritics, tatweel) and folds spaces, so the normalised
    length of a prefix grows with the prefix and a binary search finds the place.
    """
    return bisect.bisect_left(range(len(line) + 1), norm_index,
                              key=lambda i: len(matching_form(line[:i])))
