"""The ingest metrics: outcomes and durations of the task's tries (run eagerly
here, on real audio), and the queue's length read from a real Redis."""

import logging
import socket
import time
from contextlib import closing

import pytest
from celery import Celery

from clips import tasks
from clips.metrics import INGEST_OUTCOMES
from clips.models import ClipStatus
from clips.ops.prometheus import IngestQueueCollector
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory, RemoteClipFactory
from clips.tests.ops.test_metrics import Samples
from clips.tests.tools import redis_env
from clips_project.metrics_dir import metrics_dir_empty

INGESTS = "clips_ingest_total"
TRIES_TIMED = "clips_ingest_duration_seconds_count"


@pytest.mark.django_db
class TestOutcomes:
    def test_audio_made_ready_counts_ready_and_its_time(self):
        clip = ClipFactory(audio_file__data=tone("wav"), status=ClipStatus.PENDING)
        samples = Samples()
        tasks.clip_ingest.delay(clip.pk)
        assert samples.delta(INGESTS, outcome="ready") == 1
        assert samples.delta(TRIES_TIMED) == 1
        assert samples.delta("clips_ingest_duration_seconds_sum") > 0

    def test_audio_that_is_not_audio_counts_failed(self):
        clip = ClipFactory(audio_file__data=b"not audio", status=ClipStatus.PENDING)
        samples = Samples()
        tasks.clip_ingest.delay(clip.pk)
        assert samples.delta(INGESTS, outcome="failed") == 1
        assert samples.delta(INGESTS, outcome="ready") == 0

    def test_an_origin_down_counts_each_retry_then_gave_up(self, settings, httpserver):
        settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
        httpserver.expect_request("/busy.wav").respond_with_data("busy", status=503)
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/busy.wav"))
        samples = Samples()
        tasks.clip_ingest.delay(clip.pk)
        assert samples.delta(INGESTS, outcome="retried") == tasks.MAX_RETRIES
        assert samples.delta(INGESTS, outcome="gave_up") == 1
        assert samples.delta(TRIES_TIMED) == tasks.MAX_RETRIES + 1

    def test_a_clip_deleted_before_its_ingest_counts_skipped(self):
        clip = ClipFactory(status=ClipStatus.PENDING)
        clip_id = clip.pk
        clip.delete()
        samples = Samples()
        tasks.clip_ingest.delay(clip_id)
        assert samples.delta(INGESTS, outcome="skipped") == 1

    def test_an_unexpected_exception_counts_error_and_propagates(self, monkeypatch):
        def broken(*, clip_id):
            raise RuntimeError("a bug")

        monkeypatch.setattr(tasks.pipeline, "clip_ingest", broken)
        samples = Samples()
        with pytest.raises(RuntimeError):
            tasks.clip_ingest.delay(1)
        assert samples.delta(INGESTS, outcome="error") == 1


def test_every_outcome_is_exported_from_the_start(client):
    text = client.get("/metrics").content.decode()
    for outcome in INGEST_OUTCOMES:
        assert f'clips_ingest_total{{outcome="{outcome}"}}' in text


def queue_length(collector: IngestQueueCollector) -> float | None:
    families = list(collector.collect())
    if not families:
        return None
    (family,) = families
    assert family.name == "clips_ingest_queue_length"
    (sample,) = family.samples
    return sample.value


@pytest.fixture
def broker(settings):
    """The app's broker settings on the machine's Redis, with a prefix of its own,
    and a Celery producer that queues as the app's own would."""
    with redis_env() as env:
        settings.CELERY_BROKER_URL = env["REDIS_URL"]
        settings.CELERY_TASK_ALWAYS_EAGER = False
        options = {"global_keyprefix": f"{env['CACHE_KEY_PREFIX']}:celery:"}
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
        producer = Celery(
            "clips-test", broker=env["REDIS_URL"], broker_transport_options=options
        )
        yield producer
        producer.close()


def test_queue_length_counts_waiting_messages_of_every_priority(broker):
    collector = IngestQueueCollector()
    assert queue_length(collector) == 0  # no list yet: nothing queued
    for clip_id in (1, 2, 3):
        broker.send_task("clips.tasks.clip_ingest", args=(clip_id,))
    broker.send_task("clips.tasks.clip_ingest", args=(4,), priority=9)
    assert queue_length(collector) == 4


def test_queue_length_is_on_the_apps_metrics_page(broker, client):
    broker.send_task("clips.tasks.clip_ingest", args=(1,))
    text = client.get("/metrics").content.decode()
    assert "\nclips_ingest_queue_length 1.0\n" in text


def test_no_queue_length_when_tasks_run_eagerly(client):
    assert queue_length(IngestQueueCollector()) is None
    assert "clips_ingest_queue_length" not in client.get("/metrics").content.decode()


@pytest.mark.parametrize("answers", [False, True], ids=["refused", "silent"])
def test_a_broker_down_leaves_the_queue_length_out_quickly(settings, caplog, answers):
    """Refused, or accepting and never answering: absent, logged, within its timeout."""
    with closing(socket.socket()) as silent:
        silent.bind(("127.0.0.1", 0))
        if answers:
            silent.listen()
        port = silent.getsockname()[1]
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        settings.CELERY_TASK_ALWAYS_EAGER = False
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="clips.ops.prometheus"):
            assert queue_length(IngestQueueCollector()) is None
    assert time.monotonic() - started < 2
    (record,) = caplog.records
    assert record.getMessage().startswith("Ingest queue length unknown: ")


def test_a_worker_starts_its_sums_from_zero_but_keeps_its_own_zeros(tmp_path):
    """Files of an earlier run go; the starting worker's, made at import, stay."""
    for name in ("counter_41.db", "histogram_41.db", "counter_7.db", "counter_417.db"):
        (tmp_path / name).write_bytes(b"")
    metrics_dir_empty(tmp_path, keep_pid=7)
    assert [path.name for path in tmp_path.iterdir()] == ["counter_7.db"]
