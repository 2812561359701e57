"""The pending clips are the ingest's outbox: whatever lost a clip's message, the
outbox check queues its ingest again, and every saved clip ends ready or failed."""

import datetime
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from prometheus_client import REGISTRY

from clips import tasks
from clips.ingest import outbox
from clips.models import Clip, ClipStatus
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory
from clips.tests.tools import free_port
from clips_project.celery import app as celery_app

pytestmark = pytest.mark.django_db

MINUTE = datetime.timedelta(minutes=1)


def pending(**fields) -> Clip:
    """A pending clip of real audio, its outbox fields as given."""
    clip = ClipFactory(
        status=ClipStatus.PENDING,
        audio_file__data=tone("wav", seconds=1),
    )
    Clip.objects.filter(pk=clip.pk).update(**fields)
    return clip


def ago(delta: datetime.timedelta) -> datetime.datetime:
    return timezone.now() - delta


def test_a_clip_made_in_the_shell_is_ingested_by_the_outbox_check():
    clip = Clip.objects.create(
        title="Made in manage.py shell",
        genre="ambient",
        duration=1,
        audio_file=ContentFile(tone("wav", seconds=1), name="shell.wav"),
    )
    assert clip.status == ClipStatus.PENDING
    Clip.objects.filter(pk=clip.pk).update(updated_at=ago(2 * MINUTE))

    tasks.ingest_outbox_check()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    assert clip.ingest_started_at is not None
    assert clip.ingest_queued_at is not None


def test_a_clip_saved_a_moment_ago_is_left_to_the_queueing_of_its_save():
    clip = pending()
    assert clip.pk not in outbox.clips_owed()


def test_an_ingest_the_broker_took_lately_is_not_queued_again():
    clip = pending(updated_at=ago(60 * MINUTE), ingest_queued_at=ago(5 * MINUTE))
    assert clip.pk not in outbox.clips_owed()


def test_an_ingest_taken_long_ago_and_never_started_is_queued_again():
    """Its message was lost: Redis restarted, and kept nothing."""
    clip = pending(updated_at=ago(60 * MINUTE), ingest_queued_at=ago(20 * MINUTE))
    assert outbox.clips_owed() == [clip.pk]


def test_an_ingest_running_now_is_not_queued_again():
    clip = pending(
        updated_at=ago(60 * MINUTE),
        ingest_queued_at=ago(20 * MINUTE),
        ingest_started_at=ago(MINUTE),
        ingest_starts=1,
    )
    assert clip.pk not in outbox.clips_owed()


def test_an_ingest_started_longer_ago_than_it_may_run_is_queued_again():
    """Its worker died, and the broker did not give the task back."""
    clip = pending(
        updated_at=ago(60 * MINUTE),
        ingest_queued_at=ago(20 * MINUTE),
        ingest_started_at=ago(15 * MINUTE),
        ingest_starts=1,
    )
    assert outbox.clips_owed() == [clip.pk]


def test_audio_whose_ingest_started_too_often_without_finishing_fails(settings):
    clip = pending(
        updated_at=ago(60 * MINUTE),
        ingest_queued_at=ago(20 * MINUTE),
        ingest_started_at=ago(15 * MINUTE),
        ingest_starts=settings.CLIPS_INGEST_MAX_STARTS,
    )
    assert outbox.clips_owed() == []
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.failure_reason.startswith("The ingest started 3 times and never")


def test_a_message_back_after_each_death_gives_up_instead_of_starting_again(
    settings,
):
    """A dying pool process gives its message back at once: the start after
    CLIPS_INGEST_MAX_STARTS fails the clip without reading its audio."""
    clip = pending(ingest_starts=settings.CLIPS_INGEST_MAX_STARTS)
    before = REGISTRY.get_sample_value("clips_ingest_total", {"outcome": "gave_up"})

    tasks.clip_ingest_here(clip_id=clip.pk)

    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.failure_reason.startswith("The ingest started 3 times and never")
    assert not clip.renditions.exists()  # never read
    after = REGISTRY.get_sample_value("clips_ingest_total", {"outcome": "gave_up"})
    assert after == before + 1


def test_a_ready_clip_whose_ingest_again_keeps_dying_stays_ready(settings):
    clip = pending()
    tasks.clip_ingest_here(clip_id=clip.pk)
    Clip.objects.filter(pk=clip.pk).update(
        ingest_starts=settings.CLIPS_INGEST_MAX_STARTS
    )

    assert outbox.clip_started(clip_id=clip.pk) is False

    clip.refresh_from_db()
    assert (clip.status, clip.failure_reason) == (ClipStatus.READY, "")


def test_a_finished_ingest_counts_its_starts_from_zero_again(settings):
    clip = pending(ingest_starts=settings.CLIPS_INGEST_MAX_STARTS - 1)
    tasks.clip_ingest_here(clip_id=clip.pk)
    clip.refresh_from_db()
    assert (clip.status, clip.ingest_starts) == (ClipStatus.READY, 0)


def test_only_work_directories_older_than_any_ingest_are_swept(tmp_path, settings):
    settings.CELERY_TASK_TIME_LIMIT = 60
    dead = tmp_path / f"{outbox.WORK_DIR_PREFIX}dead"
    running = tmp_path / f"{outbox.WORK_DIR_PREFIX}running"
    other = tmp_path / "someone-elses"
    for directory in (dead, running, other):
        directory.mkdir()
        (directory / "original").write_bytes(b"audio")
    long_ago = time.time() - 3600
    os.utime(dead, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))

    assert outbox.work_dirs_sweep(directory=tmp_path) == 1
    assert not dead.exists()
    assert running.exists() and other.exists()


@pytest.fixture
def broker_down():
    """The app queues to a real broker address where nothing listens."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager = False
    conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    forget_connections()
    yield
    conf.task_always_eager, conf.broker_url = saved
    forget_connections()


def forget_connections() -> None:
    """Drop the app's connections and producers, as Celery does in a forked child,
    so that the next message goes to the broker the configuration names now."""
    celery_app.close()
    celery_app.amqp._producer_pool = None


@pytest.mark.usefixtures("broker_down")
def test_an_upload_while_the_broker_is_down_is_taken_and_its_ingest_owed(
    curator_client, django_capture_on_commit_callbacks
):
    failures = "clips_ingest_queue_failures_total"
    before = REGISTRY.get_sample_value(failures)
    upload = SimpleUploadedFile("take.wav", tone("wav", seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = curator_client.post(
            "/api/v1/clips",
            {"title": "Broker down", "genre": "ambient", "duration": 1}
            | {"audio_file": upload},
        )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    clip = Clip.objects.get(pk=response.json()["id"])
    assert (clip.status, clip.ingest_queued_at) == (ClipStatus.PENDING, None)
    assert REGISTRY.get_sample_value(failures) == before + 1
