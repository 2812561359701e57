"""Celery tasks: thin, they call services (clips.ingest.clip_ingest)."""

from celery import shared_task

from clips import ingest

MAX_RETRIES = 5


@shared_task(bind=True, max_retries=MAX_RETRIES)
def clip_ingest(self, clip_id: int) -> None:
    """Probe a clip's audio and make its renditions; retried while the failure lasts."""
    try:
        ingest.clip_ingest(clip_id=clip_id)
    except ingest.IngestRetry as error:
        if self.request.retries >= MAX_RETRIES:
            ingest.clip_ingest_give_up(
                clip_id=clip_id,
                reason=f"Gave up after {MAX_RETRIES + 1} tries: {error}",
            )
            return
        if self.request.is_eager:
            # No broker to wait in (make run, tests): try again at once.
            self.apply(args=(clip_id,), retries=self.request.retries + 1)
            return
        # 10 s, 20 s, 40 s, 80 s, 160 s.
        raise self.retry(exc=error, countdown=10 * 2**self.request.retries) from error
