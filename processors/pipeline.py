"""The domain stages wired together from the config, with no knowledge of Kafka.

``marsad.stream`` moves records between topics and calls into this; tests and batch tools call
it directly.
"""

from __future__ import annotations

from marsad.config import Config, parse_duration
from processors.actors import ActorLexicon
from processors.claims import ClaimExtractor
from processors.dedup import Deduplicator
from processors.gazetteer import Gazetteer, MonitoredTowns
from processors.novelty import NoveltyJudge
from processors.taggers import load_tagger


class Pipeline:
    def __init__(self, config: Config, gazetteer: Gazetteer | None = None):
        self.gazetteer = gazetteer or Gazetteer.default()
        self.towns = MonitoredTowns(
            self.gazetteer, [(t.name, list(t.aliases)) for t in config.towns]
        )
        self.actors = ActorLexicon()
        self.tagger = load_tagger(config.ner.backend)
        self.claims = ClaimExtractor(self.towns, self.gazetteer, self.actors, self.tagger)
        self.dedup = Deduplicator(parse_duration(config.dedup.window, "dedup.window"))
        self.novelty = NoveltyJudge(parse_duration(config.novelty.window, "novelty.window"))
