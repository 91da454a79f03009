"""The five seeds in replay order: the alerts an analyst reading them expects, claim by claim.

Replay order is the file order (000 ... 004); the seeds carry no publication times, so the
novelty window is measured on arrival. Each expectation is (seed, event type, agents that must
be among the alert's agents, words of the evidence sentence), from our reading of the text.
"""

from __future__ import annotations

import pytest

from ingest.documents import read_documents
from marsad.config import default_config
from processors.pipeline import Pipeline
from tests.conftest import SEEDS

EXPECTED_ALERTS = [
    # 000: ISIS counter-attacked and entered البوكمال again.
    ("000", "territory_control", {"isis"}, "ودخلت الى البوكمال من جديد"),
    # 000: the Syrian army sent large reinforcements into the town.
    ("000", "military_buildup", {"syrian_government"}, "بتعزيزات كبيرة الى البوكمال"),
    # 000: six Russian strategic bombers struck ISIS positions in البوكمال.
    ("000", "air_strike", {"russia"}, "وجهت 6 قاذفات استراتيجية روسية"),
    # 001: over 200 ISIS fighters fled through tunnels.
    ("001", "withdrawal", {"isis"}, "من الفرار عبر انفاق"),
    # 002: the Russian defence ministry accuses Washington of supporting ISIS.
    ("002", "accusation", {"russia"}, "اتهام وزارة الدفاع الروسية مجددا واشنطن"),
    # 003: cruise missiles at البوكمال, attributed to the Russian defence ministry.
    ("003", "shelling_missile", {"russia"}, "إطلاق 6 صواريخ مجنحة"),
    # 003: government forces 40 km away, preparing for the decisive battle (planned).
    ("003", "military_buildup", {"syrian_government"}, "حيث تستعد لمواجهة حاسمة"),
    # 004: the coalition says it is preparing an attack on البوكمال (planned).
    ("004", "military_buildup", {"us_coalition"}, "التحالف يستعد لشن هجوم على البوكمال"),
]

# Claims a later seed repeats: they must raise no new alert.
REPEATS = [
    # 003's headline repeats 000's Russian air strikes on ISIS in البوكمال.
    ("003", "air_strike", "russia", "ضربات جوية روسية لأهداف داعش في البوكمال"),
    # 001 retells ISIS's return into the town that 000 reported.
    ("001", "territory_control", "isis", "عاد مسلحو داعش وتسللوا"),
]


def agents(claim) -> set[str]:
    return {a.id for a in claim.actors if a.role == "agent"}


@pytest.fixture(scope="module")
def replayed():
    """(seed prefix, alert) for every alert raised, and every claim judged, in replay order."""
    pipeline = Pipeline(default_config())
    dedup_state: dict = {}
    towns: dict = {}
    alerts, judged = [], []
    for doc in read_documents([SEEDS]):
        result = pipeline.dedup.check(doc, dedup_state)
        pipeline.dedup.remember(doc, result, dedup_state)
        assert result.duplicate_of is None
        for claim in pipeline.claims.extract(doc):
            verdict = pipeline.novelty.judge(claim, towns.get(claim.town.id))
            towns[claim.town.id] = verdict.state
            judged.append((doc.source[:3], claim, verdict.outcome))
            if verdict.alert:
                alerts.append((doc.source[:3], verdict.alert))
    return alerts, judged


@pytest.mark.parametrize("seed, event, expected_agents, evidence", EXPECTED_ALERTS,
                         ids=[f"{e[0]}-{e[1]}" for e in EXPECTED_ALERTS])
def test_expected_alert(replayed, seed, event, expected_agents, evidence):
    alerts, _ = replayed
    matching = [a for s, a in alerts if s == seed and a.claim.event_type == event
                and evidence in a.claim.sentence]
    assert matching, f"no {event} alert from seed {seed} quoting «{evidence}»"
    assert expected_agents <= {x for a in matching for x in agents(a.claim)}


def test_attributed_claims_name_their_source(replayed):
    alerts, _ = replayed
    [missiles] = [a for s, a in alerts if "إطلاق 6 صواريخ مجنحة" in a.claim.sentence]
    assert missiles.claim.attributed_to.id == "russia"
    assert missiles.claim.attributed_to.name == "وزارة الدفاع الروسية"
    assert missiles.claim.modality == "reported"
    [coalition] = [a for s, a in alerts if s == "004" and a.claim.modality == "planned"
                   and a.claim.attributed_to is not None]
    assert coalition.claim.attributed_to.id == "us_coalition"


@pytest.mark.parametrize("seed, event, agent, evidence", REPEATS,
                         ids=[f"{r[0]}-{r[1]}" for r in REPEATS])
def test_repeated_claims_raise_no_alert(replayed, seed, event, agent, evidence):
    alerts, judged = replayed
    assert any(s == seed and c.event_type == event and agent in agents(c)
               and evidence in c.sentence and o == "repeat"
               for s, c, o in judged), "the claim should be extracted and judged a repeat"
    assert not [a for s, a in alerts if s == seed and a.claim.event_type == event
                and agent in agents(a.claim) and evidence in a.claim.sentence]


@pytest.mark.parametrize("seed, opening", [
    # 000 opens with the army's earlier capture of the town, recalled as context.
    ("000", "بعد سيطرة الجيش العربي السوري"),
    # 001, written on 4 December, recalls the army's announcement of 17 November.
    ("001", "يوم 17/11/2017 أعلن الجيش السوري وحلفاؤه تحرير البوكمال"),
])
def test_background_recalls_raise_nothing(replayed, seed, opening):
    alerts, judged = replayed
    recalled = [c for s, c, o in judged if s == seed and c.event_type == "territory_control"
                and c.sentence.startswith(opening) and o == "background"]
    assert recalled
    assert not [a for s, a in alerts if s == seed and a.claim.event_type == "territory_control"
                and a.claim.sentence.startswith(opening)
                and {x.id for x in a.claim.actors} == {x.id for x in recalled[0].actors}]
