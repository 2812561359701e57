"""The service's own Prometheus metrics; django-prometheus adds HTTP, DB and models.

Every label comes from a small, fixed set, so the number of series stays bounded:
`genre` is the Genre enum, `source`, `reason`, `use` and `outcome` are the tuples
below, and
`clip_id` is bounded by the catalogue (curators add clips; a listener cannot mint
ids, since an unknown id is a 404 before anything is counted). Never label by URL,
user, client address or anything else a request can choose.

Under gunicorn these live in prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, see clips_project/gunicorn.py), and /metrics sums them;
a Celery worker's prefork children likewise, on its own endpoint (clips_project/
celery.py); metrics_registry() is what either endpoint reports. The ingest queue's
length is read at scrape time (clips/ops/prometheus.py).
"""

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
)

# Where the audio bytes come from: an uploaded file or a remote origin relayed.
STREAM_SOURCES = ("file", "remote")
# Why a stream failed; all but client_gone are JSON error codes the view answers.
STREAM_ERROR_REASONS = (
    "range_not_satisfiable",
    "audio_missing",
    "origin_error",
    "origin_unreachable",
    "origin_blocked",
    "origin_too_large",
    "client_gone",
)
# What went on without the shared cache while Redis was unreachable (clips.caching).
CACHE_USES = ("rate_limit", "catalogue", "waveform", "stream")
# How one try of the ingest task ended (clips.tasks): the clip became ready or
# failed, the try failed for now and the task will retry, the last retry failed
# too (the clip failed), the clip was deleted or got new audio meanwhile, or the
# task raised (a bug, the database down: the clip stays pending).
INGEST_OUTCOMES = ("ready", "failed", "retried", "gave_up", "skipped", "error")

STREAMS = Counter(
    "clips_streams_total",
    "Plays counted: listens that start at byte 0 (as in the play_count statistics).",
    ["clip_id", "genre"],
)
STREAM_BYTES = Counter(
    "clips_stream_bytes_total",
    "Audio body bytes sent to listeners, counted when each response is closed.",
    ["source"],
)
STREAM_FIRST_BYTE = Histogram(
    "clips_stream_first_byte_seconds",
    "Time from the stream request reaching the view to the first body byte.",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STREAM_DURATION = Histogram(
    "clips_stream_duration_seconds",
    "Time from the stream request reaching the view to its last byte being sent.",
    ["source"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
STREAM_ERRORS = Counter(
    "clips_stream_errors_total",
    "Streams that failed, by reason (see STREAM_ERROR_REASONS).",
    ["reason"],
)
LISTEN_HEARD_RATIO = Histogram(
    "clips_listen_heard_ratio",
    "The share of its stream a counted listen heard, observed once, when its "
    "player first reports it ended (clips.listening).",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
LISTENS_OVER_ADDRESS_CAP = Counter(
    "clips_listens_over_address_cap_total",
    "Anonymous listens not counted as plays: their address had "
    "CLIPS_PLAYS_PER_ADDRESS plays of the clip in the window already.",
)
DATABASE_UNAVAILABLE = Counter(
    "clips_database_unavailable_total",
    "Requests answered 503 because the database could not be reached.",
)
CACHE_UNAVAILABLE = Counter(
    "clips_cache_unavailable_total",
    "Requests that went on without the shared cache (Redis), by what it was for.",
    ["use"],
)
INGESTS = Counter(
    "clips_ingest_total",
    "Tries of the ingest task, by how they ended (see INGEST_OUTCOMES).",
    ["outcome"],
)
INGEST_QUEUE_FAILURES = Counter(
    "clips_ingest_queue_failures_total",
    "Ingests the broker could not take; their clips stay pending until the outbox "
    "check queues them again.",
)
INGESTS_REQUEUED = Counter(
    "clips_ingest_requeued_total",
    "Ingests the outbox check queued again: lost, never queued, or never finished.",
)
INGEST_DURATION = Histogram(
    "clips_ingest_duration_seconds",
    "Time one try of the ingest task took, whatever its outcome.",
    # A short clip's probe takes 0.1 s, a 1-hour WAV's preview minutes.
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

# Every series exists from start-up at 0, so rate() sees the first error too.
for _source in STREAM_SOURCES:
    STREAM_BYTES.labels(source=_source)
    STREAM_FIRST_BYTE.labels(source=_source)
    STREAM_DURATION.labels(source=_source)
for _reason in STREAM_ERROR_REASONS:
    STREAM_ERRORS.labels(reason=_reason)
for _use in CACHE_USES:
    CACHE_UNAVAILABLE.labels(use=_use)
for _outcome in INGEST_OUTCOMES:
    INGESTS.labels(outcome=_outcome)


def metrics_registry() -> CollectorRegistry:
    """The metrics this process reports: its own, or with PROMETHEUS_MULTIPROC_DIR
    (gunicorn, the Celery worker) those every process of the server wrote, summed."""
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    return registry
