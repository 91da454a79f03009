"""Score the whole stream against hand-labelled articles (tests/data/stream_gold.jsonl).

Builds the input with scripts/build_stream_eval.py (the corpus stays in ../shared), runs it
through `marsad process` with every gold town monitored, exactly as a user would, and prints:

- first reports caught: gold new events (not background) with an alert from the same article
  about the same town and of the same event type (and, leniently, of any type);
- false alerts on articles whose town carries no new event (copies, passing mentions,
  homographs), as a share of the alerts on those articles' towns plus the caught ones;
- alerts on articles that name no monitored town (must be none).

    python scripts/eval_stream.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from processors.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", default=ROOT / "tests/data/stream_gold.jsonl")
    parser.add_argument("--keep", help="folder to keep the input and alerts in")
    parser.add_argument("--verbose", action="store_true", help="list misses and false alerts")
    args = parser.parse_args()

    gold = [json.loads(line) for line in Path(args.gold).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    work = Path(args.keep or tempfile.mkdtemp(prefix="marsad-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    docs, alerts_path = work / "stream.jsonl", work / "alerts.jsonl"
    subprocess.run([sys.executable, str(ROOT / "scripts/build_stream_eval.py"), "--out", str(docs)],
                   check=True)
    towns = sorted({row["town"] for row in gold if row["town"]})
    command = [sys.executable, "-m", "marsad.cli", "process", str(docs), "--alerts-out",
               str(alerts_path)]
    for town in towns:
        command += ["--town", town]
    subprocess.run(command, check=True, cwd=ROOT)
    alerts = [json.loads(line) for line in alerts_path.read_text(encoding="utf-8").splitlines()]

    by_doc: dict[str, list[dict]] = defaultdict(list)
    for alert in alerts:
        by_doc[alert["doc"]["id"]].append(alert)
    wanted = caught = caught_any = 0
    false_alerts = quiet_alerts = true_alerts = 0
    for row in gold:
        doc_alerts = by_doc.get(row["doc_id"], [])
        if row["town"] is None:
            quiet_alerts += len(doc_alerts)
            continue
        town = normalize(row["town"])
        mine = [a for a in doc_alerts if normalize(a["town"]["name_ar"]) == town]
        events = [e for e in row["new_events"] if not e.get("background")]
        for event in events:
            wanted += 1
            same = [a for a in mine if a["claim"]["event_type"] == event["event_type"]]
            caught += bool(same)
            caught_any += bool(mine)
            if not same and args.verbose:
                print(f"MISSED {row['doc_id']} {row['town']} {event['event_type']}: "
                      f"{event['sentence'][:120]}")
        if events:
            true_alerts += len(mine)
        else:
            false_alerts += len(mine)
            if mine and args.verbose:
                for alert in mine:
                    print(f"FALSE {row['doc_id']} {row['town']} {alert['claim']['event_type']}: "
                          f"{alert['claim']['sentence'][:120]} ({row.get('note', '')[:60]})")
    print(f"{len(gold)} articles, {len(alerts)} alerts (input and alerts in {work})")
    print(f"first reports caught: {caught}/{wanted} = {caught / max(1, wanted):.3f} "
          f"(any event type: {caught_any / max(1, wanted):.3f})")
    print(f"false alerts on copies, passing mentions and homographs: {false_alerts} of "
          f"{false_alerts + true_alerts} alerts on labelled towns = "
          f"{false_alerts / max(1, false_alerts + true_alerts):.3f}")
    print(f"alerts on articles naming no monitored town: {quiet_alerts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
