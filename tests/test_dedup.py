"""Deduplication on real articles: every kind of syndicated copy is caught, updates and other
stories that share most of an article's text pass, the state is compact, bounded and restorable,
and `marsad dedup` writes the contract's lines."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from marsad.cli import main
from marsad.records import Document
from processors.boilerplate import story_sentences
from processors.dedup import DedupResult, Deduplicator

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPUS = SHARED_DATA / "corpus" / "jawharafm-ant-v1.1.jsonl.gz"
WEEK = 7 * 86400.0
T0 = datetime(2017, 3, 1, 10, 0)


@pytest.fixture(scope="module")
def articles() -> dict[str, Document]:
    """Real articles of the shared corpus by id (the first 3,000, enough for every case)."""
    if not CORPUS.exists():
        pytest.skip(f"needs the shared corpus at {CORPUS}, which is absent")
    out = {}
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if number == 3000:
                break
            data = json.loads(line)
            if data["text"].strip():
                out[data["id"]] = Document.from_dict(dict(data, published=None))
    return out


def _at(doc: Document, hours: float = 0, doc_id: str | None = None, **changes: str) -> Document:
    when = (T0 + timedelta(hours=hours)).isoformat() + "+00:00"
    return replace(doc, published=when, id=doc_id or doc.id, **changes)


def _long(articles: dict[str, Document], sentences: int = 4, skip: int = 0) -> Document:
    """A real article with at least this many sentences (and 80 words)."""
    found = [d for d in articles.values()
             if len(re.findall(r"[.!?؟]\s", d.text + " ")) >= sentences and len(d.text.split()) >= 80]
    return _at(found[skip])


def check_pair(a: Document, b: Document, window: float = WEEK) -> DedupResult:
    dedup = Deduplicator(window)
    state: dict[str, str] = {}
    dedup.remember(a, dedup.check(a, state), state)
    return dedup.check(b, state)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?؟])\s+", text.strip()) if s]


# -- copies -------------------------------------------------------------------------------------

def test_same_text_under_another_title_and_id_is_an_exact_copy(articles):
    a = _long(articles)
    b = _at(a, 2, "b", title="عاجل | " + (a.title or ""), source="another site")
    result = check_pair(a, b)
    assert (result.duplicate_of, result.kind) == (a.id, "exact")


def test_portal_furniture_is_looked_past(articles):
    a = _long(articles)
    others = [d.title for d in list(articles.values())[100:110] if d.title and not d.title.endswith(".")][:3]
    text = "\n".join([
        "خبر عاجل", "أخبار العالم / موقع الخبر", "نشر الاثنين 04 ديسمبر, 2017 في تمام الساعة 16:40",
        "- وليد عبد الرحيم", "• 1/7", "• 2/7", "36",
        a.text,
        "اقرأ أيضا", *others,
        f"انت الان تتصفح خبر بعنوان {a.title} ونحن فى بوابة الأخبار لا نتحمل أى مسؤولية تجاه هذا "
        "الخبر ويمكن الرجوع الى المصدر الاصلي للخبر من هنا",
        "شارك هذا الخبر: فيسبوك تويتر واتساب", "سيريانيوز",
    ])
    result = check_pair(a, _at(a, 3, "b", text=text))
    assert result.duplicate_of == a.id
    assert result.kind == "exact"  # nothing of the story changed once the furniture is gone


def test_teasers_in_the_middle_of_the_story_are_dropped(articles):
    a = _long(articles)
    first, *rest = _sentences(a.text)
    teasers = ["قد تقرأ أيضا", *[d.title for d in list(articles.values())[200:210]
                                 if d.title and not d.title.endswith(".")][:3]]
    b = _at(a, 1, "b", text="\n".join([first, *teasers, " ".join(rest)]))
    assert check_pair(a, b).duplicate_of == a.id


def test_spelling_variants_are_copies(articles):
    a = _long(articles, skip=1)
    text = (a.text.replace("أ", "ا").replace("إ", "ا").replace("ة ", "ه ").replace("ى ", "ي ")
            .replace("ال", "الـ", 3).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")))
    text = re.sub(r"(?<=[\u0621-\u064A])(?=\s)", "\u064e", text, count=5)  # stray fatha
    assert text != a.text
    result = check_pair(a, _at(a, 1, "b", text=text))
    assert (result.duplicate_of, result.kind) == (a.id, "exact")


def test_a_dropped_paragraph_or_a_cut_ending_is_a_copy(articles):
    a = _long(articles, sentences=6, skip=2)
    sentences = _sentences(a.text)
    dropped = " ".join(sentences[:2] + sentences[3:])
    cut = " ".join(sentences[: max(2, len(sentences) * 2 // 3)])
    assert check_pair(a, _at(a, 1, "b", text=dropped)).duplicate_of == a.id
    assert check_pair(a, _at(a, 1, "c", text=cut)).duplicate_of == a.id


def test_rewrapped_lines_are_copies(articles):
    a = _long(articles, skip=3)
    words = " ".join(a.text.split()).split(" ")
    wrapped = "\n".join(" ".join(words[i:i + 9]) for i in range(0, len(words), 9))
    result = check_pair(a, _at(a, 1, "b", text=wrapped))
    assert (result.duplicate_of, result.kind) == (a.id, "exact")


def test_copies_name_the_first_copy_seen(articles):
    a = _long(articles, skip=4)
    dedup, state = Deduplicator(WEEK), {}
    results = []
    for number, doc in enumerate([a, _at(a, 1, "b", text="عاجل\n" + a.text),
                                  _at(a, 2, "c", text=a.text + "\nالمصدر: وكالات")]):
        result = dedup.check(doc, state)
        dedup.remember(doc, result, state)
        results.append(result.duplicate_of)
    assert results == [None, a.id, a.id]


# -- what must pass -----------------------------------------------------------------------------

def test_an_update_with_a_new_paragraph_passes_and_says_what_is_new(articles):
    a = _long(articles, skip=5)
    other = _long(articles, skip=40)
    addition = " ".join(_sentences(other.text)[:2])
    b = _at(a, 4, "b", text=a.text + "\n" + addition)
    result = check_pair(a, b)
    assert result.duplicate_of is None
    assert result.update_of == a.id
    assert result.new_sentences and all(start > len(a.text) for start, _ in result.new_sentences)
    assert b.text[result.new_sentences[0][0]:].startswith(addition.split()[0])
    # The hint travels with the document to the claim stage.
    forwarded = Document.from_dict(json.loads(json.dumps(result.annotate(b).to_dict())))
    assert (forwarded.update_of, forwarded.new_sentences) == (a.id, result.new_sentences)


def test_an_update_with_a_new_figure_passes(articles):
    a = _long(articles, skip=6)
    b = _at(a, 4, "b", text=a.text + "\nوفي حصيلة محينة، ارتفع عدد القتلى إلى 173.")
    assert check_pair(a, b).duplicate_of is None


def test_a_changed_figure_passes(articles):
    figure = re.compile(r"(?<![\d:/.])\b\d{2,3}\b(?![:/.]\d)")
    a = next(d for d in articles.values() if figure.search(d.text) and len(d.text.split()) >= 80)
    match = figure.search(a.text)
    text = a.text[:match.start()] + str(int(match.group()) + 7) + a.text[match.end():]
    b = _at(a, 4, "b", text=text)
    assert check_pair(_at(a), b).duplicate_of is None


def test_a_one_line_denial_passes(articles):
    a = _long(articles, skip=7)
    b = _at(a, 4, "b", text=a.text + "\nونفت الوزارة صحة هذه الأنباء في وقت لاحق.")
    assert check_pair(a, b).duplicate_of is None


def test_another_story_sharing_the_background_passes(articles):
    a = _long(articles, sentences=5, skip=8)
    other = _long(articles, skip=60)
    sentences = _sentences(a.text)
    background = " ".join(sentences[1:])
    b = _at(a, 4, "b", text=" ".join(_sentences(other.text)[:2]) + "\n" + background)
    result = check_pair(a, b)
    assert result.duplicate_of is None


# -- state --------------------------------------------------------------------------------------

def test_copies_outside_the_window_pass_and_old_records_are_forgotten(articles):
    a = _long(articles, skip=9)
    dedup, state = Deduplicator(86400), {}
    dedup.remember(a, dedup.check(a, state), state)
    late_copy = _at(a, 30, "late")
    assert dedup.check(late_copy, state).duplicate_of is None
    for number, doc in enumerate(list(articles.values())[300:320]):
        doc = _at(doc, 30 + number)
        dedup.remember(doc, dedup.check(doc, state), state)
    assert a.id not in state and len(state) == len(dedup)


def test_memory_is_bounded_by_a_document_cap(articles):
    dedup, state = Deduplicator(WEEK, max_documents=20), {}
    for number, doc in enumerate(list(articles.values())[:60]):
        doc = _at(doc, number / 10)
        dedup.remember(doc, dedup.check(doc, state), state)
    assert len(state) <= 20


def test_records_are_small_and_hold_no_text(articles):
    a = _long(articles, skip=10)
    dedup, state = Deduplicator(WEEK), {}
    dedup.remember(a, dedup.check(a, state), state)
    value = json.dumps(state[a.id])
    assert len(value) < 1024
    assert not re.search(r"[\u0600-\u06FF]", value)


def test_the_index_is_rebuilt_from_a_restored_state(articles):
    """What a worker restarting (or taking over) has: the table restored from its changelog
    (JSON values), and a new Deduplicator with an empty index."""
    a = _long(articles, skip=11)
    first, state = Deduplicator(WEEK), {}
    dedup_docs = [a, *(_at(d, 1) for d in list(articles.values())[400:410])]
    for doc in dedup_docs:
        first.remember(doc, first.check(doc, state), state)
    restored = json.loads(json.dumps(state))
    after_restart = Deduplicator(WEEK)
    result = after_restart.check(_at(a, 2, "copy", text="خبر عاجل\n" + a.text), restored)
    assert result.duplicate_of == a.id
    # A redelivered document (its offset was not committed before the crash) is not passed twice.
    assert after_restart.check(a, restored) == DedupResult(a.id, "redelivered")
    # Entries it cannot read (another version's) are skipped, not fatal, and not rebuilt each time.
    restored["old"] = {"id": "x", "at": 1}
    assert after_restart.check(_at(a, 3, "again", text=a.text), restored).duplicate_of == a.id


def test_boilerplate_of_the_seed_articles():
    """The seeds carry real portal furniture: counters, an aggregator footer, a teaser header, a
    byline, a signature and a date line."""
    kept = {}
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        body = "\n".join(lines[1:])
        kept[path.name[:3]] = " ".join(body[s.start:s.end] for s in story_sentences(body, lines[0]))
    assert "انت الان تتصفح" not in kept["002"] and "قد تقرأ" not in kept["002"]
    assert "1/7" not in kept["002"] and "روسيا تتهم أمريكا" in kept["002"]
    assert "سيريانيوز" not in kept["004"] and "28.10.2017" not in kept["004"]
    assert "pelest" not in kept["001"] and "وليد عبد الرحيم" not in kept["001"]
    assert kept["000"].startswith("بعد سيطرة الجيش")


# -- command line -------------------------------------------------------------------------------

def test_marsad_dedup_writes_one_line_per_document(articles, tmp_path, capsys):
    a = _long(articles, skip=12)
    other = _long(articles, skip=13)
    docs = [a, other, _at(a, 2, "copy-of-a", text="عاجل\n" + a.text + "\nاقرأ أيضا\n" + (other.title or "")),
            _at(a, 3, "update-of-a", text=a.text + "\nوارتفع عدد المصابين إلى 47 حسب مصدر طبي.")]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in docs),
                      encoding="utf-8")
    out = tmp_path / "out" / "dedup.jsonl"
    assert main(["dedup", str(source), str(ROOT / "seeds"), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(line) == {"id", "duplicate_of"} for line in lines)
    assert [line["duplicate_of"] for line in lines[:4]] == [None, None, a.id, None]
    assert len(lines) == 4 + 5 and all(line["duplicate_of"] is None for line in lines[4:])
    assert "1 duplicates" in capsys.readouterr().err


def test_marsad_dedup_with_nothing_readable_fails_and_says_why(tmp_path, capsys):
    assert main(["dedup", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "0 documents" in err and "1 inputs skipped" in err
