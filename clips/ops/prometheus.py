"""/metrics: this process's metrics, or every gunicorn worker's summed, and the
length of the ingest queue, read from the broker at scrape time.

Plain text for Prometheus, answered by clips.ops.health's middleware before the
Host check: Prometheus asks each replica by its address.
"""

import logging
from functools import cache
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from kombu.transport.redis import PRIORITY_STEPS, Channel
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from clips.metrics import metrics_registry

logger = logging.getLogger(__name__)

# A scrape waits at most this long for the broker (connect, then the answer).
BROKER_TIMEOUT_SECONDS = 0.5


class IngestQueueCollector:
    """clips_ingest_queue_length: ingest messages waiting in the broker.

    kombu's Redis transport keeps a queue as one list per priority step; their
    lengths are read in one round trip. While the broker cannot be read the
    metric is absent (a -1 would count in sums and thresholds), and one line is
    logged; with an eager or non-Redis broker there is no queue to read.
    """

    def collect(self):
        keys = _queue_keys()
        if not keys:
            return
        client = _broker_client(settings.CELERY_BROKER_URL)
        try:
            with client.pipeline(transaction=False) as pipeline:
                for key in keys:
                    pipeline.llen(key)
                lengths = pipeline.execute()
        except redis.RedisError as error:
            logger.warning(
                "Ingest queue length unknown: %s: %s", type(error).__name__, error
            )
            return
        yield GaugeMetricFamily(
            "clips_ingest_queue_length",
            "Ingest tasks waiting in the broker (not those a worker has taken).",
            value=sum(lengths),
        )


def metrics_export(request: HttpRequest) -> HttpResponse:
    registry = metrics_registry()
    registry.register(IngestQueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _queue_keys() -> list[str]:
    """The broker's lists of the ingest queue, as kombu names them."""
    if settings.CELERY_TASK_ALWAYS_EAGER or urlsplit(
        settings.CELERY_BROKER_URL
    ).scheme not in ("redis", "rediss"):
        return []
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
    queue = prefix + settings.CELERY_TASK_DEFAULT_QUEUE
    return [queue] + [f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS[1:]]


@cache
def _broker_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
