"""Claims from sentences about monitored towns, and novelty judged per town."""

from datetime import datetime, timezone

import pytest

from marsad.config import default_config
from marsad.records import Document
from processors.claims import event_type
from processors.normalize import normalize
from processors.novelty import MAX_CLAIMS, MAX_STATE_BYTES, source_key
from processors.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline(default_config())


def claims_of(pipeline, text, title=None, published=None):
    return pipeline.claims.extract(Document.from_dict(
        {"text": text, "title": title, "published": published}))


@pytest.mark.parametrize("sentence, expected", [
    ("قصفت طائرات روسية مواقع لتنظيم داعش في البوكمال", "air_strike"),
    ("سقطت قذائف هاون على البوكمال", "shelling_missile"),
    ("اندلعت اشتباكات عنيفة في البوكمال", "armed_clash"),
    ("انفجرت سيارة مفخخة في البوكمال", "explosion"),
    ("أعلن الجيش السوري تحرير البوكمال", "territory_control"),
    ("انسحب مسلحو داعش من البوكمال", "withdrawal"),
    ("سقط عشرة قتلى في البوكمال", "casualties"),
    ("دفع الجيش بتعزيزات كبيرة إلى البوكمال", "military_buildup"),
    ("اتهمت روسيا واشنطن بحماية داعش في البوكمال", "accusation"),
    ("نزوح آلاف العائلات من البوكمال", "humanitarian"),
])
def test_event_type_from_cue_words(sentence, expected):
    assert event_type(normalize(sentence))[0] == expected


def test_claim_with_actors_roles_and_attribution(pipeline):
    text = ("والجمعة، أعلنت وزارة الدفاع الروسية إطلاق 6 صواريخ مجنحة على مواقع لتنظيم داعش "
            "المتشدد بمحيط مدينة البوكمال السورية القريبة من الحدود العراقية.")
    [claim] = claims_of(pipeline, text)
    assert claim.event_type == "shelling_missile"
    assert claim.attributed_to.id == "russia"
    assert claim.attributed_to.name == "وزارة الدفاع الروسية"
    assert claim.modality == "reported"
    # The ministry announces its own launch: Russia is the agent as well as the source.
    assert [(a.id, a.role) for a in claim.actors] == [("russia", "agent"), ("isis", "target")]
    assert text[claim.start:claim.end] == claim.sentence == text


def test_sentences_without_the_town_make_no_claim(pipeline):
    assert claims_of(pipeline, "قصفت طائرات روسية مواقع لتنظيم داعش في دير الزور.") == []


def test_planned_and_denied(pipeline):
    [planned] = claims_of(pipeline, "أعلن التحالف الدولي أنه يستعد لشن هجوم على مدينة البوكمال.")
    assert planned.modality == "planned"
    [denied] = claims_of(pipeline, "نفى التحالف أنه قصف مواقع للجيش السوري قرب البوكمال.")
    assert denied.modality == "denied"


def test_novelty_new_then_repeat_then_new_episode(pipeline):
    first = claims_of(pipeline, "قصفت طائرات روسية مواقع داعش في البوكمال.",
                      published="2017-11-05T10:00:00+00:00")[0]
    again = claims_of(pipeline, "طائرات روسية تقصف مواقع داعش في البوكمال مجددا.",
                      published="2017-11-06T10:00:00+00:00")[0]
    later = claims_of(pipeline, "قصفت طائرات روسية مواقع داعش في البوكمال اليوم.",
                      published="2017-12-20T10:00:00+00:00")[0]
    judge = pipeline.novelty
    v1 = judge.judge(first, None)
    assert v1.outcome == "new" and v1.alert.alert_id
    v2 = judge.judge(again, v1.state)
    assert v2.outcome == "repeat" and v2.alert is None
    entry = next(iter(v2.state["claims"].values()))
    assert entry["sources"] == [source_key(first.doc.id), source_key(again.doc.id)]
    # Beyond the 14-day window the same kind of claim is news again, with a new alert id.
    v3 = judge.judge(later, v2.state)
    assert v3.outcome == "new" and v3.alert.alert_id != v1.alert.alert_id
    # Judging the same claim from the same state gives the same alert id (replays are stable).
    assert judge.judge(first, None).alert.alert_id == v1.alert.alert_id


def test_a_misdated_claim_does_not_wipe_the_towns_history(pipeline):
    now = datetime.now(timezone.utc).isoformat()
    first = claims_of(pipeline, "قصفت طائرات روسية مواقع داعش في البوكمال.", published=now)[0]
    # A feed dated this article two centuries ahead: it counts as at most a day after arrival.
    future = claims_of(pipeline, "اندلعت اشتباكات عنيفة في البوكمال.",
                       published="2204-01-01T00:00:00+00:00")[0]
    again = claims_of(pipeline, "طائرات روسية تقصف مواقع داعش في البوكمال مجددا.", published=now)[0]
    judge = pipeline.novelty
    state = judge.judge(first, None).state
    state = judge.judge(future, state).state
    assert judge.judge(again, state).outcome == "repeat"


def test_background_claims_raise_nothing(pipeline):
    [claim] = claims_of(pipeline, "وكانت قوات النظام قد سيطرت على البوكمال العام الماضي.")
    assert claim.background
    assert pipeline.novelty.judge(claim, None).outcome == "background"


@pytest.mark.parametrize("sentence, published, background", [
    # Recalled: the date is days or years before the article.
    ("ويوم الأربعاء 15 فيفري الجاري فجر انتحاري شاحنة ملغومة في البوكمال.", "2017-02-19T10:00:00Z", True),
    ("في 12 فيفري 2008 اغتيل قيادي في تفجير سيارته في البوكمال.", "2017-02-19T10:00:00Z", True),
    ("قصفت طائرات روسية البوكمال يوم 10/2/2017.", "2017-02-19T10:00:00Z", True),
    # "20 ديسمبر" in a January article is last December's.
    ("قصفت طائرات روسية البوكمال في 20 كانون الأول.", "2018-01-05T10:00:00Z", True),
    # The news itself: today's or yesterday's date, or an article with no published time.
    ("ويوم الأحد 19 فيفري 2017 فجر انتحاري شاحنة ملغومة في البوكمال.", "2017-02-19T10:00:00Z", False),
    ("قصفت طائرات روسية البوكمال يوم 18/2/2017.", "2017-02-19T10:00:00Z", False),
    ("ويوم الأربعاء 15 فيفري فجر انتحاري شاحنة ملغومة في البوكمال.", None, False),
    # A coming date with no year is this year's, not last year's.
    ("تستعد القوات لشن هجوم على البوكمال يوم 25 فيفري.", "2017-02-19T10:00:00Z", False),
])
def test_a_dated_event_is_background_when_the_date_is_days_before_publication(
        pipeline, sentence, published, background):
    [claim] = claims_of(pipeline, sentence, published=published)
    assert claim.background is background
    assert (pipeline.novelty.judge(claim, None).outcome == "background") is background


def test_a_feed_dating_items_in_the_future_does_not_make_todays_news_background(pipeline):
    arrived = datetime(2017, 2, 19, 10, tzinfo=timezone.utc)
    doc = Document.from_dict({"text": "ويوم الأحد 19 فيفري 2017 فجر انتحاري شاحنة ملغومة في البوكمال.",
                              "published": "2018-02-19T10:00:00Z",
                              "ingested_at": arrived.timestamp()})
    [claim] = pipeline.claims.extract(doc)
    assert not claim.background


def test_control_by_a_rival_actor_contradicts(pipeline):
    army = claims_of(pipeline, "أعلن الجيش السوري سيطرته الكاملة على مدينة البوكمال.",
                     published="2017-11-19T08:00:00+00:00")[0]
    isis = claims_of(pipeline, "عاد مسلحو داعش وسيطروا على أحياء في مدينة البوكمال.",
                     published="2017-11-20T08:00:00+00:00")[0]
    assert army.event_type == isis.event_type == "territory_control"
    first = pipeline.novelty.judge(army, None)
    second = pipeline.novelty.judge(isis, first.state)
    assert second.outcome == "contradicts"
    assert second.alert.status == "contradicts"
    assert second.alert.previous == (first.alert.alert_id,)


def test_assertion_after_denial_contradicts(pipeline):
    denial = claims_of(pipeline, "نفى التحالف الدولي أنه قصف مواقع في البوكمال.",
                       published="2017-11-10T08:00:00+00:00")[0]
    assertion = claims_of(pipeline, "قصف التحالف الدولي مواقع في البوكمال.",
                          published="2017-11-11T08:00:00+00:00")[0]
    assert denial.modality == "denied" and assertion.modality == "asserted"
    first = pipeline.novelty.judge(denial, None)
    second = pipeline.novelty.judge(assertion, first.state)
    assert second.outcome == "contradicts"
    assert second.alert.previous == (first.alert.alert_id,)


def test_a_near_copy_of_an_earlier_sentence_is_a_repeat(pipeline):
    original = claims_of(pipeline, "قصفت طائرات روسية مواقع لتنظيم داعش قرب مدينة البوكمال "
                                   "شرقي دير الزور فجر اليوم.")[0]
    # A syndicated rewrite whose actor extraction differs must not alert again.
    copy = claims_of(pipeline, "قصفت طائرات مواقع لتنظيم داعش قرب مدينة البوكمال شرقي "
                               "دير الزور فجر اليوم، وفق ما أفاد ناشطون.")[0]
    first = pipeline.novelty.judge(original, None)
    assert pipeline.novelty.judge(copy, first.state).outcome == "repeat"


@pytest.fixture(scope="module")
def homograph_pipeline():
    from marsad.config import TownConfig

    config = default_config()
    config.towns = [TownConfig("الباب"), TownConfig("القائم"), TownConfig("البوكمال")]
    return Pipeline(config)


@pytest.mark.parametrize("sentence", [
    "قصفت الطائرات الحربية مقر الحزب وفتحت الباب أمام مفاوضات جديدة.",
    "اندلعت اشتباكات حول الوضع القائم في البرلمان.",
    "شن الجيش هجوما على مواقع المسلحين في بادية البوكمال.",
])
def test_common_words_and_locators_are_not_claims_about_the_town(homograph_pipeline, sentence):
    assert claims_of(homograph_pipeline, sentence) == []


@pytest.mark.parametrize("sentence, town", [
    ("سيطرت فصائل المعارضة على مدينة الباب بعد معارك عنيفة.", "الباب"),
    ("يعزز داعش دفاعاته في القائم والبوكمال.", "القائم"),
])
def test_homograph_towns_count_with_place_evidence(homograph_pipeline, sentence, town):
    assert town in {c.town.name_ar for c in claims_of(homograph_pipeline, sentence)}


def test_one_claim_per_town_named_in_the_clause(homograph_pipeline):
    claims = claims_of(homograph_pipeline, "يعزز داعش دفاعاته في القائم والبوكمال.")
    assert sorted(c.town.name_ar for c in claims) == ["البوكمال", "القائم"]
    assert {c.event_type for c in claims} == {"military_buildup"}


class _RuleTagger:
    """Tags the words of one organisation name; stands in for a trained model's ORG spans."""

    def __init__(self, words: list[str]):
        self.words = words

    def tag(self, tokens: list[str]) -> list[str]:
        tags = ["O"] * len(tokens)
        for i in range(len(tokens) - len(self.words) + 1):
            if tokens[i:i + len(self.words)] == self.words:
                tags[i:i + len(self.words)] = ["B-ORG"] + ["I-ORG"] * (len(self.words) - 1)
        return tags

    def tag_sentences(self, sentences: list[list[str]]) -> list[list[str]]:
        return [self.tag(s) for s in sentences]


def test_organisations_the_lexicon_lacks_come_from_the_tagger(pipeline):
    from processors.claims import ClaimExtractor

    extractor = ClaimExtractor(pipeline.towns, pipeline.gazetteer, pipeline.actors,
                               _RuleTagger(["حركة", "أحرار", "الشام"]))
    [claim] = extractor.extract(Document.from_dict(
        {"text": "شنت حركة أحرار الشام هجوما على مواقع في البوكمال."}))
    assert claim.event_type == "armed_clash"
    assert [(a.id, a.name, a.role) for a in claim.actors] == [
        ("actor:حركه_احرار_الشام", "حركة أحرار الشام", "agent")]


@pytest.mark.parametrize("sentence, kind, actor", [
    ("شنت هيئة تحرير الشام هجوما على مدينة البوكمال", "armed_clash", "هيئة تحرير الشام"),
    ("سيطر جيش الإسلام على مدينة البوكمال بعد معارك عنيفة", "territory_control", "جيش الإسلام"),
    ("بالمقابل شنت حركة «أحرار الشام» هجوما على مدينة البوكمال", "armed_clash", "حركة أحرار الشام"),
    ("قصف لواء القدس مواقع في البوكمال", "shelling_missile", "لواء القدس"),
])
def test_armed_groups_outside_the_contract_ids_are_actors(pipeline, sentence, kind, actor):
    # The tagger misses most of these names; the group's name must not become the event either
    # (تحرير, "liberation", is a territory_control cue).
    from processors.actors import derived_actor_id

    [claim] = claims_of(pipeline, sentence)
    assert claim.event_type == kind
    assert [(a.id, a.role) for a in claim.actors] == [(derived_actor_id(actor), "agent")]


def test_a_towns_novelty_state_stays_far_below_the_message_limit(pipeline):
    """One table value per town: hundreds of distinct claims from documents with long ids must
    not grow it towards the broker's 1 MB limit (which would crash the worker)."""
    import json

    from marsad.records import Actor, Claim, DocRef, Town
    town = Town("albukamal", "البوكمال")
    state = None
    for i in range(MAX_CLAIMS + 100):
        claim = Claim(town, "air_strike", (Actor(f"actor:group{i}", f"group {i}", "agent"),),
                      None, "asserted", f"قصف{i} مواقع{i} قرب{i} البوكمال{i}", DocRef("x" * 500 + str(i)),
                      published=f"2017-11-05T10:{i // 60 % 60:02}:{i % 60:02}+00:00")
        verdict = pipeline.novelty.judge(claim, state)
        assert verdict.outcome == "new"
        state = verdict.state
    assert len(state["claims"]) == MAX_CLAIMS
    assert len(json.dumps(state).encode()) < 400_000
    # The newest claims are the ones kept.
    assert any("group399" in sig for sig in state["claims"])
    assert not any(sig.endswith("group0|positive") for sig in state["claims"])

    # Claims from another producer may name 20 agents of 300 characters each: a byte bound too.
    state = None
    for i in range(100):
        agents = tuple(Actor(f"actor:{i}:{n}:" + "x" * 290, "x", "agent") for n in range(20))
        claim = Claim(town, "armed_clash", agents, None, "asserted", f"اشتباك{i} قرب{i} البوكمال{i}",
                      DocRef(f"d{i}"), published=f"2017-11-05T10:{i // 60 % 60:02}:{i % 60:02}+00:00")
        state = pipeline.novelty.judge(claim, state).state
    assert len(json.dumps(state, ensure_ascii=False).encode()) <= MAX_STATE_BYTES
    assert any(sig.split("|")[2].startswith("actor:99:") for sig in state["claims"])
