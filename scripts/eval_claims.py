"""Score claim extraction against hand-annotated sentences (tests/data/claims_gold.jsonl).

Each gold line is a sentence naming a town, annotated with whether it is a claim about that town
and, if so, its event type, agents, targets, source and modality. Every sentence is run through
the same extractor as the stream, with its town monitored, and the script prints:

- claim detection: precision and recall of "this sentence is a (non-background) claim";
- event type accuracy, over sentences that are claims in both gold and prediction;
- agent accuracy (predicted agent set equals gold), and agent precision/recall over ids;
- attribution and modality accuracy.

    python scripts/eval_claims.py [--gold tests/data/claims_gold.jsonl] [--errors]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from marsad.config import TownConfig, default_config
from marsad.records import Claim, Document
from processors.actors import DERIVED_PREFIX, derived_actor_id
from processors.gazetteer import UnknownPlace
from processors.normalize import normalize
from processors.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]


def best_claim(claims: list[Claim], gold: dict) -> Claim | None:
    """The predicted claim to compare: same event type if there is one, else the first."""
    live = [c for c in claims if not c.background]
    for claim in live:
        if claim.event_type == gold.get("event_type"):
            return claim
    return live[0] if live else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", default=ROOT / "tests/data/claims_gold.jsonl")
    parser.add_argument("--errors", action="store_true", help="print every disagreement")
    args = parser.parse_args()

    rows = [json.loads(line) for line in Path(args.gold).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    config = default_config()
    base = Pipeline(config)
    pipelines: dict[str, Pipeline | None] = {}
    count: Counter[str] = Counter()
    for row in rows:
        town = normalize(row["town"])
        if town not in pipelines:
            config.towns = [TownConfig(row["town"])]
            try:
                pipelines[town] = Pipeline(config, base.gazetteer)
            except UnknownPlace:
                pipelines[town] = None
        pipeline = pipelines[town]
        if pipeline is None:
            count["unknown_town"] += 1
            continue
        claims = pipeline.claims.extract(Document.from_dict({"text": row["sentence"]}))
        claim = best_claim(claims, row)
        gold_claim = bool(row["is_claim"]) and not row.get("background", False)
        count["sentences"] += 1
        count["gold_claims"] += gold_claim
        count["predicted_claims"] += claim is not None
        count["both"] += gold_claim and claim is not None
        if not (gold_claim and claim is not None):
            if gold_claim != (claim is not None) and args.errors:
                print(f"DETECT gold={gold_claim} predicted={claim and claim.event_type}: {row['sentence'][:150]}")
            continue
        count["type_ok"] += claim.event_type == row["event_type"]
        # Annotators wrote unknown actors as "actor:" + the name as printed; marsad's ids for
        # them are derived from the normalised name.
        gold_agents = {derived_actor_id(a[len(DERIVED_PREFIX):]) if a.startswith(DERIVED_PREFIX)
                       else a for a in row.get("agents") or []}
        agents = {a.id for a in claim.actors if a.role == "agent"}
        count["agents_ok"] += agents == gold_agents
        count["agent_tp"] += len(agents & gold_agents)
        count["agent_fp"] += len(agents - gold_agents)
        count["agent_fn"] += len(gold_agents - agents)
        source = claim.attributed_to.id if claim.attributed_to else None
        count["source_ok"] += source == row.get("attributed_to")
        count["modality_ok"] += claim.modality == row.get("modality")
        if args.errors and (claim.event_type != row["event_type"] or agents != gold_agents):
            print(f"CLAIM gold={row['event_type']} {sorted(gold_agents)} predicted="
                  f"{claim.event_type} {sorted(agents)}: {row['sentence'][:150]}")

    both = max(1, count["both"])
    precision = count["both"] / max(1, count["predicted_claims"])
    recall = count["both"] / max(1, count["gold_claims"])
    agent_p = count["agent_tp"] / max(1, count["agent_tp"] + count["agent_fp"])
    agent_r = count["agent_tp"] / max(1, count["agent_tp"] + count["agent_fn"])
    print(f"sentences: {count['sentences']} ({count['gold_claims']} claims in gold, "
          f"{count['unknown_town']} skipped: town not in the gazetteer)")
    print(f"claim detection: precision {precision:.3f}, recall {recall:.3f}")
    print(f"on {count['both']} sentences that are claims in both:")
    print(f"  event type accuracy {count['type_ok'] / both:.3f}")
    print(f"  agents exactly right {count['agents_ok'] / both:.3f} "
          f"(agent precision {agent_p:.3f}, recall {agent_r:.3f})")
    print(f"  source accuracy {count['source_ok'] / both:.3f}, "
          f"modality accuracy {count['modality_ok'] / both:.3f}")


if __name__ == "__main__":
    main()
