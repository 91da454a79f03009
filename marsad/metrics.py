"""Prometheus metrics: every name users' dashboards rely on is defined here, once.

Stages are labelled ``dedup``, ``claims``, ``novelty``, ``sinks`` and ``fetch``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

from marsad import __version__

if TYPE_CHECKING:
    from marsad.records import Document

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400)

BUILD = Info("marsad_build", "marsad version and role of this process")
DOCUMENTS_IN = Counter("marsad_stage_documents_in_total", "Records a stage consumed", ["stage"])
DOCUMENTS_OUT = Counter("marsad_stage_documents_out_total", "Records a stage produced", ["stage"])
DUPLICATES = Counter("marsad_duplicates_total", "Documents dropped as copies of an earlier one",
                     ["kind"])
ENTITIES = Counter("marsad_entities_total", "Entity mentions found in documents", ["type"])
CLAIMS = Counter("marsad_claims_total", "Claims extracted about monitored towns",
                 ["event_type", "modality"])
NOVELTY = Counter("marsad_novelty_total", "Claims judged by the novelty stage", ["town", "outcome"])
ALERTS = Counter("marsad_alerts_total", "Alerts raised", ["town", "status"])
SINK_DELIVERIES = Counter("marsad_sink_deliveries_total", "Alerts handed to a sink",
                          ["sink", "result"])
ERRORS = Counter("marsad_errors_total", "Errors by stage and kind", ["stage", "kind"])
DEAD_LETTERS = Counter("marsad_dead_letters_total", "Messages sent to the dead topic",
                       ["stage", "reason"])
SKIPPED_INPUTS = Counter("marsad_input_skipped_total", "Input lines or files skipped", ["reason"])
STAGE_LATENCY = Histogram("marsad_stage_latency_seconds", "Time a stage spends on one record",
                          ["stage"], buckets=_LATENCY_BUCKETS)
INGEST_TO_ALERT = Histogram("marsad_ingest_to_alert_seconds",
                            "From a document entering marsad to its alert", buckets=_E2E_BUCKETS)
PUBLISHED_TO_ALERT = Histogram("marsad_published_to_alert_seconds",
                               "From a document's published time to its alert",
                               buckets=_E2E_BUCKETS)
NOVELTY_TOWNS = Gauge("marsad_novelty_claims_remembered", "Claims remembered by the novelty stage",
                      ["town"])
# Deduplication (processors/dedup.py). DUPLICATES' kind: exact, near, or redelivered (the same
# document id again); syndication counts exact and near copies by the source that republished.
SYNDICATED = Counter("marsad_syndicated_copies_total",
                     "Copies of an earlier document dropped by deduplication, by the copy's source",
                     ["source"])
DEDUP_UPDATES = Counter("marsad_dedup_updates_total",
                        "Documents passed on that repeat most of an earlier one but add news")
DEDUP_REMEMBERED = Gauge("marsad_dedup_documents_remembered",
                         "Documents the deduplication stage remembers (its time window)")
# A stalled pipeline shows no errors, only silence: alerting on the age of this gauge catches it.
LAST_PROCESSED = Gauge("marsad_stage_last_processed_timestamp_seconds",
                       "When a stage last finished a record (Unix time)", ["stage"])
CONSUMER_LAG = Gauge("marsad_consumer_lag_messages",
                     "Records on an assigned partition after this worker's committed offset",
                     ["topic", "partition"])
# Feed ingest (ingest/poller.py). kind: feed, article or robots; result: ok, not_modified,
# http_error, timeout, network_error, parse_error, refused, robots_disallowed, too_large,
# too_many_redirects, error (unexpected; see marsad_errors_total{stage="fetch"}); robots: not_found.
FEED_FETCHES = Counter("marsad_feed_fetches_total", "HTTP fetches by feed, kind and result",
                       ["feed", "kind", "result"])
FEED_ITEMS = Counter("marsad_feed_items_emitted_total", "New feed items sent to the raw topic",
                     ["feed"])
FEED_ITEMS_SKIPPED = Counter("marsad_feed_items_skipped_total",
                             "New feed items not sent, by reason (non_arabic, empty, invalid, too_large)",
                             ["feed", "reason"])
FEED_LAST_SUCCESS = Gauge("marsad_feed_last_success_timestamp_seconds",
                          "When a feed was last fetched successfully (200 or 304)", ["feed"])
FEED_FETCH_LATENCY = Histogram("marsad_feed_fetch_duration_seconds",
                               "Time of one HTTP fetch, redirects and body included",
                               ["feed", "kind"], buckets=_LATENCY_BUCKETS)


class BoundedLabel:
    """Label values taken from input (a document's source): the first ``limit`` distinct ones
    as they are, every later one as ``other``. Each value is a time series on the Prometheus
    server, and any producer can write documents with made-up sources."""

    def __init__(self, limit: int):
        self.limit = limit
        self._known: set[str] = set()

    def __call__(self, value: str) -> str:
        if value not in self._known:
            if len(self._known) >= self.limit:
                return "other"
            self._known.add(value)
        return value


# Real deployments poll tens of feeds and take documents from a few other producers.
_SYNDICATED_SOURCE = BoundedLabel(300)


def syndication_source(doc: Document) -> str:
    """The ``source`` label of a copy. Text files replayed carry their file name as source, and a
    backfill of a few hundred would take every label before the outlets did: they count as one."""
    return "file" if doc.text_source == "file" else _SYNDICATED_SOURCE(doc.source or "unknown")


def serve(port: int, host: str, role: str) -> int | None:
    """Start the /metrics endpoint; 0 turns it off. Returns the port actually bound."""
    BUILD.info({"version": __version__, "role": role})
    if port == 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%s (%s); set [metrics] port or MARSAD_METRICS_PORT",
                  host, port, exc.strerror)
        raise SystemExit(2) from exc
    return server.server_port
