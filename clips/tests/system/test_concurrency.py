"""Concurrent listeners against gunicorn on PostgreSQL: no play lost, none doubled."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from clips.models import Play
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory
from clips.tests.system.servers import gunicorn, shared_database_url

LISTENERS = 200


@pytest.fixture
def gunicorn_url(transactional_db, tmp_path, media_root) -> Iterator[str]:
    """The app under gunicorn (2 workers x 8 threads) on this test's database."""
    extra_env = {
        "DATABASE_URL": shared_database_url(),
        "MEDIA_ROOT": str(media_root),
        "GUNICORN_THREADS": "8",
        "CLIPS_THROTTLE_STREAM": "",  # 200 listeners share one address
    }
    with gunicorn(tmp_path, workers=2, extra_env=extra_env) as app:
        yield app.url


def listen(url: str, user_agent: str) -> int:
    """One browser-like listen: start at byte 0, then seek further in."""
    with requests.Session() as session:
        session.headers["User-Agent"] = user_agent
        first = session.get(url, headers={"Range": "bytes=0-"}, timeout=60)
        seek = session.get(url, headers={"Range": "bytes=5000-"}, timeout=60)
    assert first.content == AUDIO_BYTES
    assert seek.content == AUDIO_BYTES[5000:]
    return first.status_code


def listen_concurrently(url: str, user_agents: list[str]) -> list[int]:
    with ThreadPoolExecutor(max_workers=len(user_agents)) as pool:
        return list(pool.map(listen, [url] * len(user_agents), user_agents))


@pytest.mark.postgres
def test_200_concurrent_listeners_are_all_counted(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    # One address, 200 browsers: 200 listeners (clips.plays).
    agents = [f"Browser/{n}" for n in range(LISTENERS)]
    assert listen_concurrently(url, agents) == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == LISTENERS
    assert Play.objects.filter(clip=clip).count() == LISTENERS
    assert clip_stats(clip=clip).listeners == LISTENERS


@pytest.mark.postgres
def test_200_concurrent_requests_of_one_listener_count_once(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    assert listen_concurrently(url, ["Browser/1"] * LISTENERS) == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == 1
    assert Play.objects.filter(clip=clip).count() == 1
