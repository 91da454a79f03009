"""The service on its embedded default, as the quick start runs it: one service per data_dir,
and no broker left behind however the service ends; a batch stopped midway says so."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from marsad.broker import free_port
from tests.conftest import ROOT, Service, child_env, marsad, read_jsonl, wait_for

pytestmark = pytest.mark.broker


def embedded_config(tmp_path: Path, metrics_port: int) -> Path:
    config = tmp_path / "marsad.toml"
    config.write_text(f'''
[service]
data_dir = "{tmp_path / 'data'}"

[ingest]
replay = ["{ROOT / 'seeds'}"]

[sinks]
console = false
jsonl = "{tmp_path / 'alerts.jsonl'}"

[metrics]
port = {metrics_port}
host = "127.0.0.1"
''', encoding="utf-8")
    return config


def accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), 0.5).close()
    except OSError:
        return False
    return True


def deduplicated(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as page:
            text = page.read().decode()
    except OSError:
        return 0.0
    found = re.search(r'marsad_stage_documents_in_total\{stage="dedup"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_one_service_per_data_dir_and_its_broker_dies_with_it(tmp_path):
    port = free_port()
    config = embedded_config(tmp_path, port)
    state = tmp_path / "data" / "broker.url"
    service = Service(config, ROOT).start()
    try:
        wait_for(lambda: read_jsonl(tmp_path / "alerts.jsonl"), timeout=120)  # the seeds' alerts
        address = state.read_text().strip().removeprefix("kafka://")

        second = marsad("run", "--config", str(config), cwd=ROOT,
                        env=child_env(MARSAD_METRICS_PORT=str(free_port())))
        assert second.returncode == 2, second.stderr
        assert f"another `marsad run` is using {tmp_path / 'data'}" in second.stderr
        assert "Traceback" not in second.stderr
        assert state.exists()  # the first service can still be found by replay and alerts
    finally:
        service.stop(signal.SIGKILL)
    # Killed without a chance to clean up: its broker goes too, so nothing takes documents that
    # no worker will process, and the next service starts over the stale address file.
    wait_for(lambda: not accepts(address), timeout=10)
    assert state.exists()
    # What the stale address file points at refuses at once, and replay says so at once.
    started = time.monotonic()
    stale = marsad("replay", "seeds", "--config", str(config), cwd=ROOT, env=child_env())
    assert stale.returncode == 2 and "connection refused" in stale.stderr
    assert time.monotonic() - started < 8  # the clients' own timeout is 10 s
    again = Service(config, ROOT).start()
    try:
        wait_for(lambda: deduplicated(port) >= 5, timeout=120)  # the seeds went through again
        assert state.read_text().strip() != f"kafka://{address}"
    finally:
        assert again.stop(signal.SIGTERM) == 0
    assert not state.exists()


# Moments of start-up, each named by the log line that follows it (None: still importing). A
# stop during the broker's start and the topic set-up once went unheard: kafka-python's I/O loop
# swallowed the KeyboardInterrupt, and the service ran on.
MOMENTS = {"importing": None, "topic set-up": "embedded broker on", "worker start": "marsad running"}


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["supervisor", "ctrl-c"])
def test_a_service_stopped_while_it_starts_exits_cleanly(tmp_path, stop, moment):
    # A supervisor may stop the service while it still loads its models, and so may Ctrl-C.
    config = embedded_config(tmp_path, free_port())
    service = Service(config, ROOT).start()
    marker = MOMENTS[moment]
    if marker is None:
        time.sleep(0.5)
    else:
        assert service.proc is not None and service.proc.stderr is not None
        for line in service.proc.stderr:
            service.stderr += line
            if marker in line:
                break
    assert service.stop(stop) == 0
    assert "Traceback" not in service.stderr
    assert "marsad stopped" in service.stderr
    assert not (tmp_path / "data" / "broker.url").exists()


def test_a_batch_stopped_midway_says_how_far_it_got(tmp_path):
    # A claim first, so its alert shows the batch under way; then a long tail of other news.
    lines = [{"id": "claim", "text": "قصفت طائرات روسية مواقع لتنظيم داعش في مدينة البوكمال."}]
    lines += [{"id": f"d{n}", "text": f"ارتفعت أسعار الخضر في سوق المدينة {n} مرة خلال الأسبوع "
                                      f"{n} حسب تقرير الغرفة التجارية."} for n in range(20_000)]
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                    encoding="utf-8")
    out = tmp_path / "alerts.jsonl"
    batch = subprocess.Popen(
        [sys.executable, "-m", "marsad.cli", "process", str(docs), "--alerts-out", str(out)],
        cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: read_jsonl(out), timeout=180)
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=60)
    # Not 0: a backfill cut short must not pass for a finished one in a script.
    assert batch.returncode == 130, err
    assert re.search(r"stopped by SIGINT at \d+/20001 documents; .* holds the alerts", err), err
    assert "Traceback" not in err
