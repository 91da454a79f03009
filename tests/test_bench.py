"""`marsad bench`: a short run through a real broker and a worker process, and its errors."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from marsad.bench import SYNTHETIC_SPACING, TOWNS, load_documents, percentile
from tests.conftest import ROOT, child_env, marsad


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0


def test_synthetic_documents_are_spread_beyond_the_windows(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"id": "c{i}", "text": "نص الخبر رقم {i}"}}\n' for i in range(30)),
                      encoding="utf-8")
    docs, synthetic = load_documents(corpus, 40, 0.25)
    assert len(docs) == 40 and synthetic == 10
    made = [d for d in docs if d.id.startswith("bench-synthetic-")]
    assert len(made) == 10 and len({d.id for d in docs}) == 40
    assert all(any(town in d.text for town in TOWNS) for d in made)
    assert "البوكمال" not in made[1].text  # the seeds' town is replaced
    # Further apart than the dedup (7 days) and novelty (14 days) windows, so each one alerts.
    dates = sorted(datetime.fromisoformat(d.published) for d in made)
    assert all(b - a == SYNTHETIC_SPACING > timedelta(days=14) for a, b in zip(dates, dates[1:]))


def test_missing_corpus_is_one_line(tmp_path):
    result = marsad("bench", "--corpus", str(tmp_path / "none.jsonl.gz"), cwd=ROOT,
                    env=child_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "not found" in result.stderr


@pytest.mark.broker
def test_short_bench_reports_throughput_and_latency(tmp_path, shared_data):
    # Without the tagger the worker starts faster; the bench's own machinery is under test.
    result = marsad("bench", "--docs", "60", "--workers", "1", "--rate", "30", "--json",
                    cwd=tmp_path, env=child_env(MARSAD_NER_BACKEND="none"), timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert run["workers"] == 1 and run["documents"] == 60 and run["synthetic"] == 3
    assert 0 < run["docs_per_second"] <= 31
    assert run["alerts"] > 0 and run["alerts"] == run["latency_ms"]["count"]
    assert 0 < run["latency_ms"]["p50"] <= run["latency_ms"]["p95"] <= run["latency_ms"]["p99"]
    assert run["stage_ms"]["dedup"] > 0 and run["stage_ms"]["claims"] > 0
    assert run["peak_rss_mb"]["workers"][0] > 50
