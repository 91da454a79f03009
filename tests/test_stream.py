"""The whole topology over a real Kafka-protocol broker: seeds in, alerts out."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from marsad.broker import free_port
from tests.conftest import ROOT, Service, child_env, marsad, read_jsonl, wait_for

pytestmark = pytest.mark.broker
SEED_003 = ROOT / "seeds" / "003_23fbf5640515ec06.txt"
CONTRACT_EVENTS = {"territory_control", "air_strike", "shelling_missile", "armed_clash",
                   "explosion", "withdrawal", "casualties", "military_buildup", "accusation",
                   "humanitarian"}


def assert_contract_alert(alert: dict, seed_texts: str) -> None:
    assert alert["town"]["name_ar"] == "البوكمال"
    assert alert["town"]["id"] == "geonames:174448"
    assert isinstance(alert["town"]["lat"], float) and isinstance(alert["town"]["lon"], float)
    claim = alert["claim"]
    assert claim["event_type"] in CONTRACT_EVENTS
    assert claim["modality"] in {"asserted", "denied", "planned", "reported"}
    assert claim["sentence"] in seed_texts, "evidence must be quoted exactly from the seed"
    assert alert["novelty"]["status"] in {"new", "contradicts"}
    assert alert["doc"]["id"] and alert["raised_at"]


def test_process_seeds_then_seeds_twice_gives_the_same_alerts(tmp_path, seeds):
    seed_texts = "\n".join(p.read_text(encoding="utf-8") for p in seeds)
    once = marsad("process", "seeds", "--alerts-out", str(tmp_path / "a.jsonl"), cwd=ROOT,
                  env=child_env())
    assert once.returncode == 0, once.stderr
    assert "Traceback" not in once.stderr
    alerts = read_jsonl(tmp_path / "a.jsonl")
    assert len(alerts) >= 3
    for alert in alerts:
        assert_contract_alert(alert, seed_texts)
    assert len({a["alert_id"] for a in alerts}) == len(alerts)

    twice = marsad("process", "seeds", "seeds", "--alerts-out", str(tmp_path / "b.jsonl"),
                   cwd=ROOT, env=child_env())
    assert twice.returncode == 0, twice.stderr
    strip = lambda rows: [{k: v for k, v in r.items() if k != "raised_at"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "b.jsonl")) == strip(alerts)


def test_process_keeps_the_order_given_whatever_the_partitions(tmp_path):
    # Forty different articles carrying one claim: the alert must come from the first of them,
    # also when the configuration asks for several partitions (as deploy/marsad.toml does).
    import random

    rng = random.Random(4)
    words = ("مدينة سوق مدرسة نهر طريق جسر مصنع حقل قرية شارع مستشفى ملعب مكتبة متحف حديقة "
             "قطار ميناء مطار جامعة مسجد").split()
    with (tmp_path / "docs.jsonl").open("w", encoding="utf-8") as out:
        for n in range(40):
            filler = " ".join(rng.choice(words) for _ in range(60))
            text = f"{filler}.\nسيطر تنظيم داعش على مدينة البوكمال."
            out.write(json.dumps({"id": f"doc{n:02}", "text": text}, ensure_ascii=False) + "\n")
    (tmp_path / "marsad.toml").write_text("[broker]\npartitions = 4\n", encoding="utf-8")
    result = marsad("process", str(tmp_path / "docs.jsonl"), "--alerts-out",
                    str(tmp_path / "a.jsonl"), "--config", str(tmp_path / "marsad.toml"),
                    cwd=tmp_path, env=child_env())
    assert result.returncode == 0, result.stderr
    assert [a["doc"]["id"] for a in read_jsonl(tmp_path / "a.jsonl")] == ["doc00"]


def test_process_with_an_unknown_town_leaves_the_output_file_alone(tmp_path):
    kept = tmp_path / "kept.jsonl"
    kept.write_text('{"alert_id": "earlier"}\n', encoding="utf-8")
    result = marsad("process", "seeds", "--alerts-out", str(kept), "--town", "Nowhereville",
                    cwd=ROOT, env=child_env())
    assert result.returncode == 2 and "Nowhereville" in result.stderr
    assert kept.read_text(encoding="utf-8") == '{"alert_id": "earlier"}\n'


def service_config(tmp_path: Path, bootstrap: str, metrics_port: int) -> Path:
    config = tmp_path / "marsad.toml"
    config.write_text(f'''
[broker]
url = "kafka://{bootstrap}"
topic_prefix = "t"
single_record_batches = true
session_timeout = "6s"

[sinks]
jsonl = "{tmp_path / 'alerts.jsonl'}"
# Nothing listens there: every alert fails this sink and must land on the dead topic.
webhooks = ["http://127.0.0.1:{free_port()}/hook?token=s3cret"]
webhook_retries = 0

[metrics]
port = {metrics_port}
host = "127.0.0.1"

[service]
data_dir = "{tmp_path / 'data'}"

[log]
level = "info"
''', encoding="utf-8")
    return config


def consume_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


def test_service_replay_alerts_poison_and_restart(tmp_path, broker):
    bootstrap = broker.bootstrap
    url = f"kafka://{bootstrap}"
    port = free_port()
    config = service_config(tmp_path, bootstrap, port)
    alerts_file = tmp_path / "alerts.jsonl"
    service = Service(config, ROOT).start()
    try:
        replay = marsad("replay", str(SEED_003), "--broker", url, "--config", str(config),
                        cwd=ROOT, env=child_env())
        assert replay.returncode == 0, replay.stderr
        first = wait_for(lambda: read_jsonl(alerts_file))
        wait_for(lambda: len(read_jsonl(alerts_file)) >= 3)

        shown = marsad("alerts", "--from-beginning", "--json", "--broker", url, "--config",
                       str(config), cwd=ROOT, env=child_env())
        assert shown.returncode == 0, shown.stderr
        topic_ids = {json.loads(line)["alert_id"] for line in shown.stdout.splitlines()}
        assert {a["alert_id"] for a in read_jsonl(alerts_file)} <= topic_ids
        assert first[0]["alert_id"] in topic_ids
        # `marsad alerts | head`: the reader goes away before marsad has printed every alert.
        piped = subprocess.Popen(
            [sys.executable, "-m", "marsad.cli", "alerts", "--from-beginning", "--broker", url,
             "--config", str(config)],
            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert piped.stdout is not None and piped.stderr is not None
        piped.stdout.close()
        assert piped.wait(timeout=60) == 141
        assert "Traceback" not in piped.stderr.read().decode()

        # Poison: bytes that are not JSON, a document without text, one whose text no stage
        # could send on (a lone surrogate) and one too large to pass on; on the later topics, a
        # claim with a date that is not a number and an alert whose id is a list. All go to the
        # dead topic with a reason; a good document sent after them is still processed.
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send("t.raw", b"\xff\xfe{not json")
        producer.send("t.raw", json.dumps({"title": "بلا نص"}).encode())
        producer.send("t.raw", json.dumps({"text": "قصف \ud800 البوكمال", "ingested_at": 1.0}).encode())
        huge = json.dumps({"text": "قصف على البوكمال. " * 20_000}, ensure_ascii=False).encode()
        producer.send("t.raw", huge)
        claim = {**first[0]["claim"], "town": first[0]["town"], "doc": first[0]["doc"],
                 "ingested_at": "yesterday"}
        producer.send("t.claims", key=b"x", value=json.dumps(claim).encode())
        producer.send("t.alerts", key=b"x", value=json.dumps({**first[0], "alert_id": ["x"]}).encode())
        # From a client other than marsad: no ingested_at, so latency counts from its arrival.
        sent_at = time.time()
        producer.send("t.raw", json.dumps({"id": "external-1", "text": "خبر من منتج آخر عن "
                                           "سوق المدينة"}, ensure_ascii=False).encode())
        producer.flush()
        producer.close()
        explosion = tmp_path / "explosion.txt"
        explosion.write_text("انفجار في البوكمال\nانفجرت سيارة مفخخة في سوق مدينة البوكمال "
                             "صباح اليوم.\n", encoding="utf-8")
        assert marsad("replay", str(explosion), "--broker", url, "--config", str(config),
                      cwd=ROOT, env=child_env()).returncode == 0
        wait_for(lambda: any(a["claim"]["event_type"] == "explosion"
                             for a in read_jsonl(alerts_file)))
        raised = {a["alert_id"] for a in read_jsonl(alerts_file)}
        external = wait_for(lambda: [d for d in map(json.loads, consume_all(bootstrap, "t.unique"))
                                     if d.get("id") == "external-1"])
        assert sent_at - 1 <= external[0]["ingested_at"] <= time.time()

        def every_alert_dead_lettered() -> list[dict] | None:
            letters = [json.loads(v) for v in consume_all(bootstrap, "t.dead")]
            failed = {json.loads(l["payload"])["alert_id"] for l in letters
                      if l["reason"] == "delivery_failed"}
            return letters if failed >= raised else None

        letters = wait_for(every_alert_dead_lettered)
        poison = [l for l in letters if l["stage"] == "dedup"]
        assert [l["reason"] for l in poison] == ["invalid_record"] * 3 + ["too_large"], poison
        assert all(l["error"] for l in poison) and "text" in poison[1]["error"]
        assert "surrogate" in poison[2]["error"]
        assert poison[3]["payload_bytes"] == len(huge) and len(poison[3]["payload"]) < 70_000
        later = {(l["stage"], l["reason"]) for l in letters if l["stage"] in ("novelty", "sinks")}
        assert later == {("novelty", "invalid_record"), ("sinks", "invalid_record"),
                         ("sinks", "delivery_failed")}, later
        failed = [l for l in letters if l["reason"] == "delivery_failed"]
        assert all("s3cret" not in l["error"] for l in failed)  # credentials stay out of letters
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        assert 'marsad_dead_letters_total{reason="invalid_record",stage="dedup"} 3.0' in scrape
        assert 'marsad_dead_letters_total{reason="too_large",stage="dedup"} 1.0' in scrape
        assert "marsad_alerts_total" in scrape
    finally:
        code = service.stop(signal.SIGTERM)
    assert code == 0
    assert "Traceback" not in service.stderr
    before = read_jsonl(alerts_file)

    # A restarted worker restores its tables: the same seed again is a duplicate, a new article
    # repeating a known claim raises nothing, and only the genuinely new claim is an alert.
    service = Service(config, ROOT).start()
    try:
        repeat = tmp_path / "repeat.txt"
        repeat.write_text("تقرير\nذكرت مصادر محلية اليوم أن قاذفات روسية ضربت مواقع لتنظيم "
                          "داعش في مدينة البوكمال.\n", encoding="utf-8")
        clash = tmp_path / "clash.txt"
        clash.write_text("عاجل\nنزوح آلاف العائلات من مدينة البوكمال هربا من المعارك.\n",
                         encoding="utf-8")
        for path in (SEED_003, repeat, clash):
            assert marsad("replay", str(path), "--broker", url, "--config", str(config),
                          cwd=ROOT, env=child_env()).returncode == 0
        wait_for(lambda: len(read_jsonl(alerts_file)) > len(before), timeout=90)
    finally:
        assert service.stop(signal.SIGINT) == 0
    after = read_jsonl(alerts_file)
    added = after[len(before):]
    assert [a["doc"]["source"] for a in added] == ["clash.txt"] * len(added), added
    assert "Traceback" not in service.stderr


def test_alerts_of_a_town_are_its_latest_however_many_others_came_after(tmp_path, broker):
    from marsad.broker import Topics, ensure_topics
    from marsad.records import Actor, Alert, Claim, DocRef, Town

    topics = Topics("a", 2)
    ensure_topics(broker.bootstrap, topics)
    config = tmp_path / "marsad.toml"
    config.write_text(f'[broker]\nurl = "kafka://{broker.bootstrap}"\ntopic_prefix = "a"\n'
                      'partitions = 2\n', encoding="utf-8")
    bukamal = Town("geonames:174448", "البوكمال", "Albu Kamal", 34.45, 40.92)
    mosul = Town("geonames:99072", "الموصل", "Mosul", 36.34, 43.13)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for n, town in enumerate([bukamal] * 3 + [mosul] * 25):
        claim = Claim(town, "air_strike", (Actor("russia", "طائرات روسية", "agent"),), None,
                      "asserted", f"قصفت طائرات روسية {town.name_ar} ({n})", DocRef(f"d{n}"))
        alert = Alert(f"alert-{n}", town, claim, "new", raised_at=f"2026-12-01T10:{n:02d}:00+00:00")
        producer.send(topics.alerts, key=alert.alert_id.encode(),
                      value=json.dumps(alert.to_dict(), ensure_ascii=False).encode())
        producer.flush()  # one record a batch, as the service sends them (Tansu's ListOffsets)
    producer.close()

    def shown(*flags: str) -> subprocess.CompletedProcess[str]:
        result = marsad("alerts", "--json", "--config", str(config), *flags, cwd=ROOT,
                        env=child_env())
        assert result.returncode == 0, result.stderr
        return result

    def ids(result: subprocess.CompletedProcess[str]) -> list[str]:
        return [json.loads(line)["alert_id"] for line in result.stdout.splitlines()]

    # The 20 most recent of all are about Mosul; the town's own are older, and still shown.
    assert ids(shown("--town", "البوكمال")) == ["alert-0", "alert-1", "alert-2"]
    assert ids(shown("--town", "Albu Kamal", "--last", "2")) == ["alert-1", "alert-2"]
    assert ids(shown("--town", "الموصل", "--last", "3")) == ["alert-25", "alert-26", "alert-27"]
    nothing = shown("--town", "دمشق")
    assert nothing.stdout == "" and "no alerts for دمشق on a.alerts" in nothing.stderr

    # Following, then Ctrl-C: 130, as for every command a user interrupts, so a script can tell
    # an interrupted follow from one that ended.
    follow = subprocess.Popen(
        [sys.executable, "-m", "marsad.cli", "alerts", "--follow", "--town", "الموصل", "--last", "1",
         "--config", str(config)], cwd=ROOT, env=child_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        assert "(27)" in follow.stdout.readline()  # the last one shown: it is following now
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=60) == 130
        assert "Traceback" not in (follow.stderr.read() if follow.stderr else "")
    finally:
        follow.kill()
        follow.wait()
