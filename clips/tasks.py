"""Celery tasks and their queueing: thin, they call the subject
(clips.ingest.pipeline.clip_ingest). Services queue through the functions here.

Queueing never fails the caller: a broker that cannot take a message leaves the
clip pending, and the outbox check (clips.ingest.outbox) queues it again.
"""

import logging
import time

from celery import shared_task
from kombu.exceptions import OperationalError

from clips import metrics
from clips.ingest import outbox, pipeline
from clips.models import ClipStatus

logger = logging.getLogger(__name__)

MAX_RETRIES = 5


@shared_task(bind=True, max_retries=MAX_RETRIES)
def clip_ingest(self, clip_id: int) -> None:
    """Probe a clip's audio and make its renditions; retried while the failure lasts.

    Each try is counted and timed on its own, before the next one starts.
    """
    started = time.perf_counter()
    if not outbox.clip_started(clip_id=clip_id):
        _ingest_counted("gave_up", started)
        return
    try:
        clip = pipeline.clip_ingest(clip_id=clip_id)
    except pipeline.IngestRetry as error:
        outbox.clip_start_ended(clip_id=clip_id)  # it ended, to be tried again
        if self.request.retries >= MAX_RETRIES:
            _ingest_counted("gave_up", started)
            pipeline.clip_ingest_give_up(
                clip_id=clip_id,
                reason=f"Gave up after {MAX_RETRIES + 1} tries: {error}",
            )
            return
        _ingest_counted("retried", started)
        if self.request.is_eager:
            # No broker to wait in (make run, tests): try again at once.
            self.apply(args=(clip_id,), retries=self.request.retries + 1)
            return
        # 10 s, 20 s, 40 s, 80 s, 160 s.
        raise self.retry(exc=error, countdown=10 * 2**self.request.retries) from error
    except Exception:
        _ingest_counted("error", started)
        raise
    if clip is None:
        outcome = "skipped"
    else:
        outcome = "ready" if clip.status == ClipStatus.READY else "failed"
    _ingest_counted(outcome, started)


@shared_task
def ingest_outbox_check() -> None:
    """Queue again every ingest the outbox says is owed; sweep dead work files.

    Celery beat sends it every CLIPS_OUTBOX_SECONDS (settings.CELERY_BEAT_SCHEDULE).
    """
    outbox.work_dirs_sweep()
    for clip_id in outbox.clips_owed():
        if not clip_ingest_queue(clip_id=clip_id):
            return  # the broker is away again: the next check tries
        metrics.INGESTS_REQUEUED.inc()


def clip_ingest_queue(*, clip_id: int) -> bool:
    """Queue a clip's ingest (run at once when no broker is configured).

    False when the broker could not take it: the clip stays pending, owed.
    """
    try:
        clip_ingest.delay(clip_id)
    except OperationalError as error:
        logger.warning("Ingest of clip %s not queued, owed: %s", clip_id, error)
        metrics.INGEST_QUEUE_FAILURES.inc()
        return False
    outbox.clip_queued(clip_id=clip_id)
    return True


def clip_ingest_here(*, clip_id: int) -> None:
    """Run a clip's ingest task in this process whatever the broker, retries and all."""
    clip_ingest.apply(args=(clip_id,), throw=True)


def _ingest_counted(outcome: str, started: float) -> None:
    metrics.INGESTS.labels(outcome=outcome).inc()
    metrics.INGEST_DURATION.observe(time.perf_counter() - started)
