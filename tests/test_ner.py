"""The committed Arabic NER model and the CoNLL helpers the `marsad ner` command relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.ner import (
    CrfTagger,
    ModelMissing,
    entity_scores,
    entity_spans,
    normalize,
    read_conll,
    strip_proclitics,
    valid_bio,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def tagger() -> CrfTagger:
    return CrfTagger.load()


def entities(tokens: list[str], tags: list[str]) -> set[tuple[str, str]]:
    return {(" ".join(tokens[a:b]), kind) for a, b, kind in entity_spans(tags)}


def test_places_in_a_news_sentence_are_locations(tagger: CrfTagger) -> None:
    tokens = "قصفت الطائرات الروسية مواقع في مدينة البوكمال شرقي دمشق امس .".split()
    found = entities(tokens, tagger.tag(tokens))
    assert ("البوكمال", "LOC") in found
    assert ("دمشق", "LOC") in found


def test_places_with_clitics_attached_are_locations(tagger: CrfTagger) -> None:
    tokens = "وعقد الاجتماع بدمشق بحضور وفد من العراق ثم سافر الوفد إلى دمشق وبغداد .".split()
    found = entities(tokens, tagger.tag(tokens))
    assert {("بدمشق", "LOC"), ("العراق", "LOC"), ("وبغداد", "LOC")} <= found


def test_town_after_a_withdrawal(tagger: CrfTagger) -> None:
    tokens = "وانسحب المسلحون من البوكمال إلى دير الزور .".split()
    assert ("البوكمال", "LOC") in entities(tokens, tagger.tag(tokens))


def test_people_and_organisation(tagger: CrfTagger) -> None:
    tokens = "وقال الرئيس السوري بشار الأسد إن الأمم المتحدة لم تتحرك .".split()
    found = entities(tokens, tagger.tag(tokens))
    assert ("بشار الأسد", "PERS") in found
    assert ("الأمم المتحدة", "ORG") in found
    tokens = "وقال وزير الخارجية الروسي سيرغي لافروف إن موسكو تدعم الحل السياسي .".split()
    found = entities(tokens, tagger.tag(tokens))
    assert {("سيرغي لافروف", "PERS"), ("موسكو", "LOC")} <= found


def test_tag_sentences_keeps_shape_and_handles_empty(tagger: CrfTagger) -> None:
    sentences = [["زار", "الوزير", "باريس", "."], [], ["قال", "كوفي", "أنان", "."]]
    tags = tagger.tag_sentences(sentences)
    assert [len(t) for t in tags] == [4, 0, 4]
    assert all(tag == "O" or tag[:2] in ("B-", "I-") for sentence in tags for tag in sentence)
    assert tagger.tag([]) == []


def test_output_is_valid_bio(tagger: CrfTagger) -> None:
    # The CRF alone tags this one-word sentence I-ORG: an entity must start with B-.
    assert tagger.tag(["داعش"]) == ["B-ORG"]
    assert valid_bio(["O", "I-LOC", "I-LOC", "B-LOC", "I-PERS"]) == [
        "O", "B-LOC", "I-LOC", "B-LOC", "B-PERS"]


def test_missing_model_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="train_ner.py"):
        CrfTagger.load(tmp_path / "nothing.crfsuite")


def test_read_conll_tab_space_untagged_and_breaks(tmp_path: Path) -> None:
    path = tmp_path / "in.conll"
    path.write_text(
        "قصفت\tO\nالبوكمال\tB-LOC\n\n\n"  # tab-separated, two blank lines = one break
        "قال O\nلافروف B-PERS\n\n"  # space-separated
        "دمشق\n\tO\n.\tO",  # no tag, an empty token, no final newline
        encoding="utf-8",
    )
    assert read_conll(path) == [
        [("قصفت", "O"), ("البوكمال", "B-LOC")],
        [("قال", "O"), ("لافروف", "B-PERS")],
        [("دمشق", None), ("", "O"), (".", "O")],
    ]


def test_entity_scores_on_a_hand_made_example() -> None:
    gold = [["B-PERS", "I-PERS", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-LOC"]]
    pred = [["B-PERS", "I-PERS", "O", "B-ORG"], ["B-ORG", "O", "O", "B-LOC"]]
    scores = entity_scores(gold, pred)
    # Right: the PERS and the second LOC. Wrong: LOC typed ORG, ORG cut short.
    assert scores["micro"]["precision"] == pytest.approx(2 / 4)
    assert scores["micro"]["recall"] == pytest.approx(2 / 4)
    assert scores["micro"]["f1"] == pytest.approx(0.5)
    assert scores["PERS"]["f1"] == 1.0
    assert scores["LOC"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert scores["ORG"]["f1"] == 0.0


def test_stray_inside_tag_starts_an_entity_like_conlleval() -> None:
    assert entity_spans(["O", "I-LOC", "I-LOC", "B-LOC", "I-PERS"]) == {
        (1, 3, "LOC"), (3, 4, "LOC"), (4, 5, "PERS")}


def test_normalisation_and_clitics() -> None:
    assert normalize("إِدْلِب") == "ادلب"
    assert strip_proclitics(normalize("للبوكمال")) == ("لل", "البوكمال")
    assert strip_proclitics(normalize("والبوكمال")) == ("وال", "البوكمال")
    assert strip_proclitics("بغداد")[1] == "غداد"  # a guess: features keep the whole word too


def test_model_matches_feature_code_on_anercorp(tagger: CrfTagger) -> None:
    """The committed model was trained on all of train.conll, so on its tail it must score high;
    a drop means the feature code changed without retraining."""
    conll = SHARED_DATA / "anercorp" / "train.conll"
    if not conll.is_file():
        pytest.skip(f"needs ANERcorp at {conll}, which is absent")
    sentences = read_conll(conll)[-200:]
    pred = tagger.tag_sentences([[t for t, _ in s] for s in sentences])
    gold = [[tag or "O" for _, tag in s] for s in sentences]
    assert entity_scores(gold, pred)["micro"]["f1"] > 0.9


def test_marsad_ner_scores_only_sentences_tagged_in_full(tmp_path) -> None:
    from tests.conftest import marsad

    conll = tmp_path / "in.conll"
    # The second sentence has a line without a tag: were it read as O, the tagger's PERS there
    # would count as a false positive.
    conll.write_text("قصفت\tO\nالطائرات\tO\nالبوكمال\tB-LOC\n\nقال\tO\nسيرغي\nلافروف\tI-PERS\n",
                     encoding="utf-8")
    result = marsad("ner", "--conll", str(conll), "--out", str(tmp_path / "out.tsv"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not scored: 1 sentences have lines without a gold tag" in result.stderr
    micro = next(line.split() for line in result.stdout.splitlines() if line.startswith("micro"))
    assert micro[-1] == "1"  # gold entities counted: البوكمال alone
    assert len((tmp_path / "out.tsv").read_text(encoding="utf-8").strip().split("\n\n")) == 2


def test_a_line_of_running_text_is_not_read_as_a_tagged_token(tmp_path: Path) -> None:
    from tests.conftest import marsad

    conll = tmp_path / "in.conll"
    conll.write_text("سافر أحمد إلى بيروت\n", encoding="utf-8")
    result = marsad("ner", "--conll", str(conll), "--out", str(tmp_path / "out.tsv"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "in.conll:1: expected TOKEN<TAB>TAG" in result.stderr
