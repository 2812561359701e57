"""Concurrent listeners against gunicorn on PostgreSQL: no play is lost."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.db import connection

from clips.models import Play
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory

LISTENERS = 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn_url(transactional_db, media_root) -> Iterator[str]:
    """The app under gunicorn (2 workers x 8 threads) on this test's database."""
    port = _free_port()
    db = connection.settings_dict
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "clips_project.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(media_root),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CLIPS_THROTTLE_STREAM": "",  # 200 listeners share one address
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "clips_project/gunicorn.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "8",
            "--access-logfile",
            "/dev/null",
            "clips_project.wsgi",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/api/v1/clips", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def listen(url: str) -> int:
    """One browser-like listen: start at byte 0, then seek further in."""
    with requests.Session() as session:
        first = session.get(url, headers={"Range": "bytes=0-"}, timeout=60)
        seek = session.get(url, headers={"Range": "bytes=5000-"}, timeout=60)
    assert first.content == AUDIO_BYTES
    assert seek.content == AUDIO_BYTES[5000:]
    return first.status_code


@pytest.mark.postgres
def test_200_concurrent_listens_are_all_counted(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    with ThreadPoolExecutor(max_workers=LISTENERS) as pool:
        statuses = list(pool.map(listen, [url] * LISTENERS))
    assert statuses == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == LISTENERS
    assert Play.objects.filter(clip=clip).count() == LISTENERS
