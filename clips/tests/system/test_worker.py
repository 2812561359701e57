"""A real Celery worker against a real Redis: an upload to the app (gunicorn, not
eager) is ingested by the worker process, and the app then streams its preview;
the worker's own metrics endpoint counts the ingest, the app's shows the queue."""

import requests

from clips.tests.audio import tone
from clips.tests.system.servers import (
    celery_worker,
    clip_ingested,
    curator_token,
    gunicorn,
    site_create,
)
from clips.tests.tools import redis_env


def test_an_upload_is_ingested_by_the_worker_through_redis(tmp_path):
    site_create(tmp_path)
    headers = {"Authorization": f"Token {curator_token(tmp_path)}"}
    with (
        redis_env() as broker,
        gunicorn(tmp_path, workers=1, extra_env=broker) as app,
        celery_worker(tmp_path, extra_env=broker) as worker,
    ):
        created = requests.post(
            f"{app.url}/api/v1/clips",
            headers=headers,
            data={"title": "Queued", "genre": "ambient", "duration": "60"},
            files={"audio_file": ("take.wav", tone("wav", seconds=3), "audio/wav")},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        clip = created.json()
        assert clip["status"] == "pending"  # not eager: the app only queued it
        assert requests.get(clip["stream_url"], timeout=10).status_code == 404

        clip = clip_ingested(app.url, clip, headers=headers)

        assert clip["status"] == "ready", clip
        assert (clip["duration"], clip["duration_corrected_from"]) == (3.0, 60.0)
        preview = requests.get(clip["stream_url"], timeout=10)
        assert preview.status_code == 200
        assert preview.headers["Content-Type"] == "audio/mpeg"

        # Counted in the pool's child process, summed by the worker's parent.
        counted = requests.get(f"{worker.url}/metrics", timeout=10).text
        assert '\nclips_ingest_total{outcome="ready"} 1.0\n' in counted
        assert "\nclips_ingest_duration_seconds_count 1.0\n" in counted
        assert (
            "\nclips_ingest_queue_length 0.0\n"
            in requests.get(f"{app.url}/metrics", timeout=10).text
        )
