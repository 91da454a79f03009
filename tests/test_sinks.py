"""Sinks: webhooks (signed, retried, dead-lettered, once per alert) and the JSONL file."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace

import pytest
from aiohttp import web

import sinks
from marsad.records import Actor, Alert, Claim, DocRef, Town
from sinks import webhook
from sinks.console import ConsoleSink
from sinks.jsonl import JsonlSink
from sinks.webhook import SIGNATURE_HEADER, WebhookSink, signature

TOWN = Town("geonames:174448", "البوكمال", "Albu Kamal", 34.45, 40.92)


def make_alert(alert_id: str) -> Alert:
    claim = Claim(TOWN, "air_strike", (Actor("russia", "قاذفات روسية", "agent"),), None,
                  "asserted", "قصفت قاذفات روسية البوكمال", DocRef("d1"))
    return Alert(alert_id, TOWN, claim, "new")


async def serve(statuses: list[int], received: list[tuple[dict, dict]]):
    async def handler(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.json()))
        body = await request.read()
        received[-1][0]["raw"] = body
        status = statuses.pop(0) if statuses else 200
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_webhook_signs_retries_and_delivers_each_alert_once(tmp_path):
    async def scenario():
        received: list = []
        failures: list = []
        runner, url = await serve([500, 503], received)

        async def failed(alert, where, reason):
            failures.append((alert.alert_id, reason))
            return True

        sink = WebhookSink(url, tmp_path, failed, secret="s3cret", retries=3, backoff=0.01)
        assert await sink.deliver(make_alert("a1"))
        assert not await sink.deliver(make_alert("a1"))  # queued already
        await sink.drain()
        assert not await sink.deliver(make_alert("a1"))  # delivered already
        sink.close()
        # A restarted service remembers what it delivered.
        again = WebhookSink(url, tmp_path, failed, secret="s3cret", retries=3, backoff=0.01)
        assert not await again.deliver(make_alert("a1"))
        again.close()
        await runner.cleanup()
        return received, failures

    received, failures = run(scenario())
    assert len(received) == 3 and not failures  # two failures, then the delivery
    headers, body = received[-1]
    assert body["alert_id"] == "a1" and body["town"]["name_ar"] == "البوكمال"
    assert headers[SIGNATURE_HEADER] == signature("s3cret", headers["raw"])


def test_webhook_gives_up_to_the_dead_letter_callback(tmp_path):
    async def scenario():
        received: list = []
        failures: list = []
        runner, url = await serve([500] * 10, received)

        async def failed(alert, where, reason):
            failures.append((alert.alert_id, where, reason))
            return True

        sink = WebhookSink(url + "?token=abc", tmp_path, failed, retries=2, backoff=0.01)
        await sink.deliver(make_alert("a2"))
        await sink.drain()
        sink.close()
        await runner.cleanup()
        return received, failures

    received, failures = run(scenario())
    assert len(received) == 3
    [(alert_id, where, reason)] = failures
    assert alert_id == "a2" and reason == "HTTP 500"
    assert "abc" not in where  # credentials never reach logs or the dead topic


def test_webhook_keeps_delivering_after_an_unexpected_failure(tmp_path):
    async def scenario():
        received: list = []
        failures: list = []
        runner, url = await serve([], received)

        async def failed(alert, where, reason):
            failures.append((alert.alert_id, reason))
            return True

        sink = WebhookSink(url, tmp_path, failed, retries=0)
        record = sink.ledger.add

        def disk_full_once(alert_id):
            sink.ledger.add = record
            raise OSError(28, "No space left on device")

        sink.ledger.add = disk_full_once
        await sink.deliver(make_alert("a3"))
        await sink.drain()
        await sink.deliver(make_alert("a4"))
        await sink.drain()
        sink.close()
        await runner.cleanup()
        return received, failures

    received, failures = run(scenario())
    assert [body["alert_id"] for _, body in received] == ["a3", "a4"]
    [(alert_id, reason)] = failures
    assert alert_id == "a3" and "No space left" in reason


def test_jsonl_sink_is_idempotent_across_restarts_and_survives_a_torn_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path)
    assert run(sink.deliver(make_alert("a1")))
    assert not run(sink.deliver(make_alert("a1")))
    sink.close()
    with path.open("a", encoding="utf-8") as out:
        out.write('{"alert_id": "a9", "tow')  # a crash mid-write
    sink = JsonlSink(path)
    assert not run(sink.deliver(make_alert("a1")))
    assert run(sink.deliver(make_alert("a2")))
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line)["alert_id"])
        except json.JSONDecodeError:
            pass
    assert parsed == ["a1", "a2"]


def test_jsonl_sink_follows_rotation_and_dead_letters_an_unwritable_path(tmp_path):
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path)
    assert run(sink.deliver(make_alert("a1")))
    path.rename(tmp_path / "alerts.jsonl.1")  # logrotate, create mode
    assert run(sink.deliver(make_alert("a2")))
    assert not run(sink.deliver(make_alert("a1")))  # still once, though in the rotated file
    assert [json.loads(line)["alert_id"] for line in path.read_text("utf-8").splitlines()] == ["a2"]
    # The path turned into a folder: the sink raises, which the stream dead-letters.
    path.unlink()
    path.mkdir()
    with pytest.raises(IsADirectoryError):
        run(sink.deliver(make_alert("a3")))
    path.rmdir()  # fixed: the next alert goes to a new file
    assert run(sink.deliver(make_alert("a4")))
    sink.close()
    assert [json.loads(line)["alert_id"] for line in path.read_text("utf-8").splitlines()] == ["a4"]


def test_sinks_remember_a_bounded_number_of_alerts(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "REMEMBERED", 3)
    monkeypatch.setattr(webhook, "REMEMBERED", 3)
    console = ConsoleSink(io.StringIO())
    jsonl = JsonlSink(tmp_path / "alerts.jsonl")
    ledger = webhook._Ledger(tmp_path / "hook.delivered")
    for n in range(10):
        assert run(console.deliver(make_alert(f"a{n}")))
        assert run(jsonl.deliver(make_alert(f"a{n}")))
        ledger.add(f"a{n}")
    jsonl.close()
    assert len(console._seen) == len(jsonl._seen) == len(ledger.ids) == 3
    assert not run(console.deliver(make_alert("a9")))  # the most recent are still known
    # The ledger file is rewritten with only the remembered ids once it holds twice as many.
    assert len((tmp_path / "hook.delivered").read_text("utf-8").split()) <= 6
    assert list(webhook._Ledger(tmp_path / "hook.delivered").ids) == ["a7", "a8", "a9"]
    assert list(JsonlSink(tmp_path / "alerts.jsonl")._seen) == ["a7", "a8", "a9"]


def test_a_ledger_rewrite_keeps_what_another_sinks_process_delivered(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "REMEMBERED", 4)
    monkeypatch.setattr(webhook, "REMEMBERED", 4)
    first = webhook._Ledger(tmp_path / "hook.delivered")
    second = webhook._Ledger(tmp_path / "hook.delivered")  # another process on the data_dir
    for n in range(8):
        first.add(f"a{n}")
    second.add("b2")
    first.add("a8")  # the ninth line: the first process rewrites the file
    assert list(webhook._Ledger(tmp_path / "hook.delivered").ids) == ["a6", "a7", "b2", "a8"]


def test_webhook_alerts_queued_at_a_stop_are_delivered_after_the_restart(tmp_path, caplog):
    async def scenario():
        received: list = []
        runner, url = await serve([500], received)

        async def failed(alert, where, reason):
            raise AssertionError(f"{alert.alert_id} given up: {reason}")

        # The endpoint fails once and the retry waits long: the worker stops meanwhile.
        sink = WebhookSink(url, tmp_path, failed, retries=3, backoff=30)
        await sink.deliver(make_alert("a1"))
        await sink.deliver(make_alert("a2"))
        while not received:
            await asyncio.sleep(0.01)
        sink.close()
        restarted = WebhookSink(url, tmp_path, failed, retries=3, backoff=30)
        assert not await restarted.deliver(make_alert("a2"))  # queued again already
        await restarted.resume()
        await restarted.drain()
        restarted.close()
        again = WebhookSink(url, tmp_path, failed)
        await again.resume()
        assert not await again.deliver(make_alert("a1"))
        again.close()
        await runner.cleanup()
        return [body["alert_id"] for _, body in received]

    assert run(scenario()) == ["a1", "a1", "a2"]
    assert "2 alerts not delivered yet stay in" in caplog.text  # said at the stop


def test_webhook_spool_stays_small_is_per_process_and_forgets_given_up_alerts(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setattr(webhook, "SPOOL_LINES", 4)

    async def scenario():
        received: list = []
        failures: list = []
        runner, url = await serve([404], received)  # the first alert is rejected for good

        async def failed(alert, where, reason):
            failures.append(alert.alert_id)
            return True

        sink = WebhookSink(url, tmp_path, failed, retries=0)
        for n in range(20):
            await sink.deliver(make_alert(f"a{n}"))
        # A second sinks process on the same data_dir: a spool of its own, nothing of the first's.
        other = WebhookSink(url, tmp_path, failed, retries=0)
        assert other._spool.path != sink._spool.path and not other._pending
        await sink.drain()
        spooled = sink._spool.path.read_text("utf-8").splitlines()
        sink.close()
        other.close()
        restarted = WebhookSink(url, tmp_path, failed, retries=0)
        left = set(restarted._pending)
        restarted.close()
        await runner.cleanup()
        return received, failures, spooled, left

    received, failures, spooled, left = run(scenario())
    assert len(received) == 20 and failures == ["a0"]
    assert len(spooled) <= 4  # rewritten as deliveries finished, not one line per alert
    assert not left  # the dead-lettered alert is not offered again after a restart


def test_an_alert_given_up_while_the_dead_topic_is_gone_stays_for_the_restart(tmp_path):
    """A last attempt that fails while the worker stops: the dead letter cannot be written
    (the producer is stopping), so the alert must stay in the spool, not be marked done."""
    async def scenario():
        received: list = []
        runner, url = await serve([500], received)

        async def broker_gone(alert, where, reason):
            return False

        sink = WebhookSink(url, tmp_path, broker_gone, retries=0)
        await sink.deliver(make_alert("a1"))
        await sink.drain()
        sink.close()

        async def kept(alert, where, reason):
            raise AssertionError(f"{alert.alert_id} given up again: {reason}")

        restarted = WebhookSink(url, tmp_path, kept, retries=0)
        await restarted.resume()
        await restarted.drain()
        restarted.close()
        await runner.cleanup()
        return [body["alert_id"] for _, body in received]

    assert run(scenario()) == ["a1", "a1"]  # refused once, delivered after the restart


def test_console_shows_the_start_of_a_long_sentence(tmp_path):
    alert = make_alert("a1")
    long = replace(alert.claim, sentence="قصفت قاذفات روسية مواقع في البوكمال " * 20)
    out = io.StringIO()
    assert run(ConsoleSink(out).deliver(replace(alert, claim=long)))
    line = out.getvalue()
    assert "actors: قاذفات روسية (agent)" in line and line.rstrip().endswith("…»")
    assert len(line) < 500


def test_console_writes_a_sentence_once_for_all_its_claims():
    first = make_alert("a1")
    syria = replace(first.claim, event_type="clashes",
                    actors=(Actor("syrian_government", "الجيش السوري", "agent"),))
    mayadin = Town("geonames:170794", "الميادين", "Mayadin", 35.02, 40.45)
    out = io.StringIO()
    sink = ConsoleSink(out)
    assert run(sink.deliver(first))
    assert run(sink.deliver(replace(first, alert_id="a2", claim=syria)))
    assert run(sink.deliver(replace(first, alert_id="a3", town=mayadin, claim=syria)))
    assert run(sink.deliver(replace(first, alert_id="a4", claim=replace(first.claim, doc=DocRef("d2")))))
    lines = out.getvalue().splitlines()
    assert [line.count("«قصفت قاذفات روسية البوكمال»") for line in lines] == [1, 0, 0, 1]
    assert lines[1] == "    + clashes (asserted) | actors: الجيش السوري (agent)"
    assert lines[2].startswith("    + الميادين: clashes")
