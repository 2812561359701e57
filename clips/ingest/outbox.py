"""The pending clips are the ingest's outbox: each owes an ingest until it is ready
or failed, whatever happened to the message that asked for it.

A message can be lost: the broker was down when the clip was saved, Redis restarted
(it keeps nothing), a worker died past the broker's visibility timeout, or the clip
was made where nothing queues (`manage.py shell`). clips.tasks checks the outbox
every CLIPS_OUTBOX_SECONDS and queues again what clips_owed() names; an audio whose
ingest started CLIPS_INGEST_MAX_STARTS times and never finished (it kills the
worker) fails, so that every saved clip ends ready or failed.
"""

import datetime
import logging
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from clips.models import Clip, ClipStatus

logger = logging.getLogger(__name__)

# The ingest's work directories (clips.ingest.pipeline), under the system's temp.
WORK_DIR_PREFIX = "clips-ingest-"


def clip_queued(*, clip_id: int) -> None:
    """The broker took this clip's ingest."""
    Clip.objects.filter(pk=clip_id).update(ingest_queued_at=timezone.now())


def clip_started(*, clip_id: int) -> bool:
    """A worker starts this clip's ingest; False when it must not.

    Not when its ingest started CLIPS_INGEST_MAX_STARTS times already and never
    finished: a pool process that dies gives its message back at once
    (CELERY_TASK_REJECT_ON_WORKER_LOST), so audio that kills it would come back
    for ever. A pending clip then fails; a ready one keeps what it has.
    """
    now = timezone.now()
    clips = Clip.objects.filter(pk=clip_id)
    clips.update(ingest_started_at=now, ingest_starts=F("ingest_starts") + 1)
    hopeless = clips.filter(ingest_starts__gt=settings.CLIPS_INGEST_MAX_STARTS)
    if not hopeless.exists():
        return True
    if _give_up(hopeless, now=now):
        logger.warning("Ingest given up for clip %s: it stops the worker", clip_id)
    return False


def clip_start_ended(*, clip_id: int) -> None:
    """This clip's ingest ended without dying (to be retried): its starts so far
    did not stop the worker."""
    Clip.objects.filter(pk=clip_id).update(ingest_starts=0)


def _give_up(hopeless: QuerySet[Clip], *, now: datetime.datetime) -> int:
    """Stop ingesting these clips: a ready one keeps the previews it has, a pending
    one fails. How many failed."""
    hopeless.filter(status=ClipStatus.READY).update(preview_owed=False)
    return hopeless.filter(status=ClipStatus.PENDING).update(
        status=ClipStatus.FAILED, failure_reason=_hopeless_reason(), ingested_at=now
    )


def _hopeless_reason() -> str:
    return (
        f"The ingest started {settings.CLIPS_INGEST_MAX_STARTS} times and never "
        "finished: reading this audio stops the worker."
    )


def clips_owed(*, now: datetime.datetime | None = None) -> list[int]:
    """Pending clips, and ready ones owing their previews, whose ingest is owed
    again, oldest first; fails the hopeless pending ones (a ready one keeps what it
    has and owes nothing more).

    Owed: never taken by the broker and saved over CLIPS_OUTBOX_SECONDS ago, or
    taken over CLIPS_INGEST_STALLED_SECONDS ago and not running now (not started
    since, or started longer ago than the task's time limit allows).
    """
    now = now or timezone.now()
    seconds = datetime.timedelta(seconds=1)
    dead_start = now - settings.CLIPS_INGEST_DEAD_SECONDS * seconds
    not_running = Q(ingest_started_at__isnull=True) | Q(
        ingest_started_at__lt=dead_start
    )
    owing = Clip.objects.filter(
        Q(status=ClipStatus.PENDING) | Q(status=ClipStatus.READY, preview_owed=True)
    )
    hopeless = owing.filter(
        ingest_starts__gte=settings.CLIPS_INGEST_MAX_STARTS,
        ingest_started_at__lt=dead_start,
    )
    if failed := _give_up(hopeless, now=now):
        logger.warning("Ingest given up for %d clip(s) that stop the worker", failed)
    never_queued = Q(
        ingest_queued_at__isnull=True,
        updated_at__lt=now - settings.CLIPS_OUTBOX_SECONDS * seconds,
    )
    stalled = Q(
        ingest_queued_at__lt=now - settings.CLIPS_INGEST_STALLED_SECONDS * seconds
    )
    owed = owing.filter(never_queued | (stalled & not_running))
    return list(owed.order_by("updated_at").values_list("pk", flat=True))


def work_dirs_sweep(*, directory: Path | None = None) -> int:
    """Delete the work directories of ingests that cannot be running any more.

    A worker killed mid-ingest leaves its directory behind (in `directory`, the
    system's temp by default); none can run longer than the task's time limit.
    Returns how many were deleted.
    """
    oldest = time.time() - settings.CLIPS_INGEST_DEAD_SECONDS
    swept = 0
    for work in (directory or Path(tempfile.gettempdir())).glob(f"{WORK_DIR_PREFIX}*"):
        try:
            stale = work.is_dir() and work.stat().st_mtime < oldest
        except FileNotFoundError:  # its ingest finished meanwhile
            continue
        if stale:
            shutil.rmtree(work, ignore_errors=True)
            swept += 1
    if swept:
        logger.warning("Deleted %d ingest work directories left behind", swept)
    return swept
