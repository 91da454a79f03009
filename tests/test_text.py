"""Normalisation, tokens with offsets, sentences and the gazetteer on real seed text."""

import pytest

from processors.gazetteer import Gazetteer, MonitoredTowns, UnknownPlace
from processors.normalize import char_forms, clitic_forms, normalize, tokenize
from processors.sentences import split_sentences

ABU_KAMAL = "geonames:174448"


@pytest.fixture(scope="module")
def gazetteer():
    return Gazetteer.default()


@pytest.fixture(scope="module")
def towns(gazetteer):
    return MonitoredTowns(gazetteer, [("البوكمال", ["أبو كمال", "البو كمال"])])


def test_normalize_folds_spelling_variants():
    assert normalize("إدلبُ") == normalize("ادلب")
    assert normalize("مدينة") == normalize("مدينه")
    assert normalize("مستشفى") == normalize("مستشفي")
    assert normalize("الـــبوكمال") == "البوكمال"


def test_tokens_keep_offsets_into_the_original():
    text = "قصفت «داعش» مواقعَ في البوكمال، أمس."
    for token in tokenize(text):
        assert text[token.start:token.end] == token.text


def test_clitic_forms():
    forms = [f for f, _ in clitic_forms("وبالبوكمال")]
    assert "البوكمال" in forms
    # ل before the article swallows its alef: للبوكمال is ل + البوكمال, one letter dropped.
    assert ("البوكمال", 1) in clitic_forms("للبوكمال")


@pytest.mark.parametrize("text, surface", [
    ("سيطر الجيش على البوكمال أمس", "البوكمال"),
    ("معارك عنيفة والبوكمال تحت القصف", "البوكمال"),
    ("غارات بالبوكمال", "البوكمال"),
    ("تعزيزات للبوكمال", "لبوكمال"),
    ("وصلت القوات إلى أبو كمال", "أبو كمال"),
    ("في البو كمال", "البو كمال"),
])
def test_town_variants_resolve_with_exact_offsets(towns, text, surface):
    found = towns.find(text, tokenize(text))
    assert [(m.id, m.surface) for m, _ in found] == [(ABU_KAMAL, surface)]
    mention = found[0][0]
    assert text[mention.start:mention.end] == surface


@pytest.mark.parametrize("text, surface", [
    ("سيطر الجيش على البوكمال أمس", "البوكمال"),
    ("تعزيزات للبوكمال", "لبوكمال"),
    ("وصلت القوات إلى أَبو كـمال", "أَبو كـمال"),
    ("في البو كمال", "البو كمال"),
])
def test_quick_test_never_misses_a_town_the_full_match_finds(towns, text, surface):
    # Claim extraction skips documents the quick test rules out, so a miss would be a lost alert.
    assert [m.surface for m, _ in towns.find(text, tokenize(text))] == [surface]
    assert towns.may_name(char_forms(text))


def test_quick_test_rules_out_text_without_the_town(towns):
    assert not towns.may_name(char_forms("انعقد اجتماع في تونس العاصمة حول قائمة المترشحين"))


def test_qaim_only_as_a_whole_word(gazetteer):
    text = "نشرت الوزارة قائمة بأسماء المقاتلين في القائم وفي القائمة الثانية"
    found = gazetteer.find(text, tokenize(text))
    qaim = [m for m, p in found if p.name_en and "Qa" in p.name_en and "im" in p.name_en]
    assert len(qaim) == 1
    assert text[qaim[0].start:qaim[0].end] == "القائم"


def test_every_abu_kamal_mention_in_the_seeds_is_found(towns, seeds):
    for path in seeds:
        text = path.read_text(encoding="utf-8")
        found = towns.find(text, tokenize(text))
        assert len(found) == text.count("البوكمال"), path.name
        assert all(text[m.start:m.end] in ("البوكمال", "لبوكمال") for m, _ in found)


def test_unknown_town_suggests_close_names(gazetteer):
    with pytest.raises(UnknownPlace) as info:
        MonitoredTowns(gazetteer, [("البوكمالل", [])])
    assert "البوكمال" in str(info.value)


def test_sentences_keep_offsets_and_decimals(seeds):
    text = seeds[1].read_text(encoding="utf-8")
    sentences = split_sentences(text)
    assert all(text[s.start:s.end] == s.text for s in sentences)
    assert any("116.000 نسمة" in s.text for s in sentences)
    assert [s.text for s in split_sentences("قال: «نعم.» ثم؟ لا")] == ["قال: «نعم.»", "ثم؟", "لا"]
