"""Every saved clip ends ready or failed, whatever dies: the broker's Redis (killed
at upload, or restarted with tasks queued) or the worker (killed mid-ingest).

Each test kills the real process, then starts it again as supervisord or compose
would, with Celery beat sending the outbox check (clips.ingest.outbox) every
second. Before the outbox, each of these clips stayed pending for good (or for the
broker's hour of visibility timeout), and an upload with the broker down was a 500.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

from clips.ingest.outbox import WORK_DIR_PREFIX
from clips.tests.audio import tone
from clips.tests.system.servers import (
    Process,
    celery_beat,
    celery_worker,
    clip_ingested,
    curator_token,
    gunicorn,
    redis_server,
    site_create,
)

# The outbox checked every second; an ingest taken a second ago and not running is
# owed again.
OUTBOX_NOW = {"CLIPS_OUTBOX_SECONDS": "1", "CLIPS_INGEST_STALLED_SECONDS": "1"}


def _upload(app: Process, headers: dict[str, str], title: str) -> dict:
    created = requests.post(
        f"{app.url}/api/v1/clips",
        headers=headers,
        data={"title": title, "genre": "ambient", "duration": "2"},
        files={"audio_file": ("take.wav", tone("wav", seconds=2), "audio/wav")},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    return created.json()


def _killed(server: Process) -> None:
    server.process.kill()
    server.process.wait(timeout=15)


def test_an_upload_while_the_broker_is_down_is_taken_and_ingested_once_it_is_back(
    tmp_path,
):
    site_create(tmp_path)
    headers = {"Authorization": f"Token {curator_token(tmp_path)}"}
    with redis_server(tmp_path) as broker:
        env = {"REDIS_URL": broker.url, **OUTBOX_NOW}
        with gunicorn(tmp_path, workers=1, extra_env=env) as app:
            _killed(broker)

            clip = _upload(app, headers, "Taken while Redis is down")
            ready = requests.get(f"{app.url}/readyz", timeout=30)
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["broker"] != "ok"

            with (
                redis_server(tmp_path, port=urlsplit(broker.url).port),
                celery_worker(tmp_path, extra_env=env),
                celery_beat(tmp_path, extra_env=env),
            ):
                clip = clip_ingested(app.url, clip, headers=headers)
                assert requests.get(f"{app.url}/readyz", timeout=30).json() == {
                    "status": "ok",
                    "checks": {"database": "ok", "storage": "ok", "broker": "ok"},
                }
            metrics = requests.get(f"{app.url}/metrics", timeout=30).text
    assert clip["status"] == "ready", clip
    assert "\nclips_ingest_queue_failures_total 1.0\n" in metrics


def test_ingests_queued_in_a_redis_that_restarts_empty_are_queued_again(tmp_path):
    site_create(tmp_path)
    headers = {"Authorization": f"Token {curator_token(tmp_path)}"}
    with redis_server(tmp_path) as broker:
        env = {"REDIS_URL": broker.url, **OUTBOX_NOW}
        with gunicorn(tmp_path, workers=1, extra_env=env) as app:
            # Queued, no worker yet: the messages live only in Redis' memory.
            clips = [_upload(app, headers, f"Queued {n}") for n in range(2)]
            _killed(broker)
            with (
                redis_server(tmp_path, port=urlsplit(broker.url).port) as restarted,
                celery_worker(tmp_path, extra_env=env),
                celery_beat(tmp_path, extra_env=env),
            ):
                clips = [clip_ingested(app.url, c, headers=headers) for c in clips]
                assert restarted.process.poll() is None
    assert [clip["status"] for clip in clips] == ["ready", "ready"], clips


class _SlowOrigin(BaseHTTPRequestHandler):
    """An audio origin that sends half the file, then waits until `release` is set:
    an ingest is under way as long as the test wants."""

    audio = tone("wav", seconds=2)
    asked = threading.Event()
    release = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(self.audio)))
        self.end_headers()
        half = len(self.audio) // 2
        self.wfile.write(self.audio[:half])
        self.wfile.flush()
        self.asked.set()
        self.release.wait(timeout=60)
        self.wfile.write(self.audio[half:])

    def log_message(self, *args):
        pass


@contextmanager
def _slow_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowOrigin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}/take.wav"
    finally:
        _SlowOrigin.release.set()
        server.shutdown()
        server.server_close()


def _work_dirs(temp: Path) -> list[Path]:
    return list(temp.glob(f"{WORK_DIR_PREFIX}*"))


def test_a_worker_killed_mid_ingest_leaves_no_clip_pending_and_no_work_files(
    tmp_path,
):
    site_create(tmp_path)
    headers = {"Authorization": f"Token {curator_token(tmp_path)}"}
    temp = tmp_path / "tmp"
    temp.mkdir()
    with redis_server(tmp_path) as broker, _slow_origin() as audio_url:
        env = {
            "REDIS_URL": broker.url,
            **OUTBOX_NOW,
            # An ingest runs 3 s at most, so one started 8 s ago is dead.
            "CELERY_TASK_TIME_LIMIT": "3",
            # The origin is this test, on loopback, by name.
            "CLIPS_ORIGIN_ALLOWED_HOSTS": "localhost",
            "CLIPS_ORIGIN_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            "TMPDIR": str(temp),
        }
        with gunicorn(tmp_path, workers=1, extra_env=env) as app:
            with celery_worker(tmp_path, extra_env=env) as doomed:
                created = requests.post(
                    f"{app.url}/api/v1/clips",
                    headers=headers,
                    json={
                        "title": "Fetched slowly",
                        "genre": "ambient",
                        "duration": 2,
                        "audio_url": audio_url,
                    },
                    timeout=30,
                )
                assert created.status_code == 201, created.text
                assert _SlowOrigin.asked.wait(timeout=30), doomed.log_text()
                assert len(_work_dirs(temp)) == 1
                os.killpg(doomed.process.pid, signal.SIGKILL)
                doomed.process.wait(timeout=15)
            _SlowOrigin.release.set()

            with (
                celery_worker(tmp_path, extra_env=env),
                celery_beat(tmp_path, extra_env=env),
            ):
                clip = clip_ingested(app.url, created.json(), headers=headers)
                assert clip["status"] == "ready", clip
                # The killed ingest's directory is swept once it cannot be running.
                deadline = time.monotonic() + 30
                while _work_dirs(temp) and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert _work_dirs(temp) == []
