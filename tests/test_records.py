"""Records in the contract's JSON forms, and reading documents from files."""

import gzip
import json

import pytest
from prometheus_client import REGISTRY

from ingest.documents import ReadReport, read_documents
from marsad.metrics import syndication_source
from marsad.records import Actor, Alert, Claim, DocRef, Document, RecordError, Town, loads


def test_missing_id_is_derived_from_content():
    a = Document.from_dict({"text": "نص", "title": "عنوان"})
    b = Document.from_dict({"text": "نص", "title": "عنوان"})
    c = Document.from_dict({"text": "نص آخر", "title": "عنوان"})
    assert a.id == b.id != c.id
    assert Document.from_dict({"id": "x1", "text": "نص"}).id == "x1"


@pytest.mark.parametrize("data, field", [
    ({}, "text"),
    ({"text": "   "}, "text"),
    ({"text": 5}, "text"),
    ({"text": "نص", "title": ["x"]}, "title"),
    ("just a string", "document"),
    # JSON can carry a lone surrogate that no stage could send on as UTF-8.
    ({"text": "قصف \ud800 البوكمال"}, "text"),
    # Ids live in the stages' state: a long one would bloat it past the broker's limit.
    ({"id": "x" * 600, "text": "نص"}, "id"),
    ({"id": int("9" * 600), "text": "نص"}, "id"),
])
def test_invalid_documents_name_the_field(data, field):
    with pytest.raises(RecordError) as info:
        Document.from_dict(data)
    assert field in str(info.value)


def make_alert_dict() -> dict:
    town = Town("geonames:174448", "البوكمال", "Albu Kamal", 34.45, 40.92)
    claim = Claim(town, "territory_control", (Actor("isis", "داعش", "agent"),),
                  Actor("russia", "وزارة الدفاع الروسية"), "reported", "دخل داعش البوكمال",
                  DocRef("d1", "https://x/1", "src", "t", "2017-11-19T10:00:00+00:00"))
    return json.loads(json.dumps(Alert("a1", town, claim, "new").to_dict()))


@pytest.mark.parametrize("change, field", [
    (lambda a: a.update(alert_id=["not", "a", "string"]), "alert_id"),
    (lambda a: a.pop("town"), "town"),
    (lambda a: a["town"].pop("name_ar"), "name_ar"),
    (lambda a: a["claim"].update(actors="داعش"), "actors"),
    (lambda a: a["novelty"].update(previous=[1, 2]), "previous"),
    (lambda a: a["claim"]["actors"][0].update(id="x" * 400), "actor"),
    (lambda a: a["claim"].update(actors=a["claim"]["actors"] * 21), "actors"),
])
def test_a_message_on_the_alerts_topic_of_the_wrong_shape_is_an_invalid_record(change, field):
    data = make_alert_dict()
    change(data)
    with pytest.raises(RecordError) as info:
        Alert.from_dict(data)
    assert field in str(info.value)


def test_an_empty_message_or_a_monstrous_number_is_not_json():
    for raw in (None, b"1" * 5000):
        with pytest.raises(RecordError):
            loads(raw)


def test_alert_has_the_contract_form():
    data = make_alert_dict()
    assert set(data) == {"alert_id", "town", "claim", "doc", "novelty", "raised_at"}
    assert set(data["town"]) == {"id", "name_ar", "name_en", "lat", "lon"}
    assert set(data["claim"]) == {"event_type", "actors", "attributed_to", "modality", "sentence"}
    assert data["claim"]["actors"] == [{"id": "isis", "name": "داعش", "role": "agent"}]
    assert data["claim"]["attributed_to"] == {"id": "russia", "name": "وزارة الدفاع الروسية"}
    assert set(data["doc"]) == {"id", "url", "source", "title", "published"}
    assert data["novelty"] == {"status": "new", "previous": []}
    assert Alert.from_dict(data).to_dict() == data


def test_seed_files_and_folders(seeds, tmp_path):
    report = ReadReport()
    docs = list(read_documents([seeds[0].parent], report))
    assert len(docs) == 5 and not report.skipped
    assert docs[3].title == "ضربات جوية روسية لأهداف داعش في البوكمال"
    assert not docs[3].text.startswith(docs[3].title)
    assert [d.source for d in docs] == [p.name for p in seeds]
    # A backfill of text files does not use up the syndication metric's labels for outlets.
    assert {syndication_source(d) for d in docs} == {"file"}
    outlet = Document.accept({"text": "خبر", "source": "سانا", "url": "https://sana.sy/1"})
    assert syndication_source(outlet) == "سانا"


def test_bad_inputs_are_counted_skips_not_crashes(tmp_path):
    good = {"id": "g1", "text": "خبر عن البوكمال"}
    # A document past the broker's reach, and JSON nested deeper than the parser's recursion.
    huge = json.dumps({"id": "h1", "text": "خبر عن البوكمال. " * 20_000}, ensure_ascii=False)
    lines = [json.dumps(good), "{broken", json.dumps({"title": "no text"}), "", huge,
             "[" * 100_000, json.dumps({"id": "g2", "text": "خبر ثان"})]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(lines), encoding="utf-8")
    gz = tmp_path / "more.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"id": "g3", "text": "خبر ثالث"}) + "\n")
    windows = tmp_path / "windows.txt"
    windows.write_bytes("عنوان\nقصفت طائرات البوكمال".encode("cp1256"))
    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes("عنوان\nقصفت طائرات البوكمال".encode("utf-16"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Café crème\nà la française, déjà vu".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    book = tmp_path / "book.txt"
    book.write_text("عنوان\n" + "فقرة طويلة جدا. " * 40_000, encoding="utf-8")
    dump = tmp_path / "dump.txt"
    dump.write_bytes(b"x" * (5 * 1024 * 1024))
    # A number past Python's digit limit, then a good line: the bad line costs itself only.
    digits = tmp_path / "digits.jsonl"
    digits.write_text('{"text": "خبر", "n": ' + "9" * 5000 + '}\n{"id": "g4", "text": "خبر رابع"}\n',
                      encoding="utf-8")
    # A gzip file whose deflate stream is broken after its first line.
    corrupt = tmp_path / "corrupt.jsonl.gz"
    whole = gzip.compress((json.dumps({"id": "g5", "text": "خبر خامس"}) + "\n").encode()
                          + b"\n".join(b'{"id": "x%d", "text": "..."}' % n for n in range(5000)))
    corrupt.write_bytes(whole[:60] + b"\xff" * 40 + whole[100:])

    too_large = REGISTRY.get_sample_value("marsad_input_skipped_total", {"reason": "too_large"})
    report = ReadReport()
    docs = list(read_documents(
        [jsonl, gz, windows, utf16, latin, empty, book, dump, digits, corrupt,
         tmp_path / "missing.txt"], report))
    assert [d.id for d in docs][:3] == ["g1", "g2", "g3"]
    assert [(d.title, d.text) for d in docs[3:5]] == [("عنوان", "قصفت طائرات البوكمال")] * 2
    assert [d.id for d in docs[5:]] == ["g4"]
    reasons = " | ".join(report.skipped)
    assert "digits.jsonl:1: malformed JSON" in reasons
    assert "corrupt.jsonl.gz: " in reasons
    assert "docs.jsonl:2: malformed JSON" in reasons
    assert "docs.jsonl:3: text: required" in reasons
    assert "docs.jsonl:5: document: " in reasons and "more than 524288" in reasons
    assert "docs.jsonl:6: malformed JSON (nested too deeply)" in reasons
    assert "book.txt: document: " in reasons
    assert "dump.txt: document: 5242880 bytes, more than 524288" in reasons
    after = REGISTRY.get_sample_value("marsad_input_skipped_total", {"reason": "too_large"})
    assert after - (too_large or 0) == 3
    assert "latin.txt: not text in UTF-8, UTF-16 or windows-1256" in reasons
    assert "empty document" in reasons and "no such file" in reasons


def test_an_unreadable_published_time_is_dropped_not_the_document():
    doc = Document.from_dict({"text": "نص", "published": "0211-20-16T00:00:00+00:00"})
    assert doc.published is None


def test_a_jsonl_line_with_bad_bytes_costs_that_line_only(tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = lambda n: json.dumps({"id": f"m{n}", "text": "قصفت طائرات البوكمال"}, ensure_ascii=False)  # noqa: E731
    path.write_bytes(b"\n".join([
        good(1).encode(), b'{"id": "m2", "text": "\xff\xfe"}', json.dumps({"text": " "}).encode(),
        b'{"text": "' + b"x" * (1100 * 1024) + b'"}', good(5).encode(), good(6).encode()]) + b"\n")
    count = lambda: REGISTRY.get_sample_value(  # noqa: E731
        "marsad_input_skipped_total", {"reason": "empty_document"}) or 0
    empty_before = count()
    report = ReadReport()
    assert [d.id for d in read_documents([path], report)] == ["m1", "m5", "m6"]
    assert count() - empty_before == 1
    assert report.skipped == [
        f"{path}:2: not UTF-8 text",
        f"{path}:3: text: empty document",
        f"{path}:4: document: a line of more than 1048576 bytes",
    ]
