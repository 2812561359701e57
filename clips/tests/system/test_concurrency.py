"""Concurrent listeners against gunicorn on PostgreSQL: no play lost, none doubled,
and no more than the cap from one address."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from clips.models import Play
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory
from clips.tests.system.servers import FromAddress, gunicorn, shared_database_url

LISTENERS = 200
PLAYS_PER_ADDRESS = 5
# One source address per listener (127.0.0.0/8 is all loopback).
ADDRESSES = [f"127.43.{n // 250}.{n % 250 + 1}" for n in range(LISTENERS)]


@pytest.fixture
def gunicorn_url(transactional_db, tmp_path, media_root) -> Iterator[str]:
    """The app under gunicorn (2 workers x 8 threads) on this test's database."""
    extra_env = {
        "DATABASE_URL": shared_database_url(),
        "MEDIA_ROOT": str(media_root),
        "GUNICORN_THREADS": "8",
        "CLIPS_THROTTLE_STREAM": "",  # listeners may share one address
        "CLIPS_PLAYS_PER_ADDRESS": str(PLAYS_PER_ADDRESS),
    }
    with gunicorn(tmp_path, workers=2, extra_env=extra_env) as app:
        yield app.url


def listen(url: str, user_agent: str, address: str) -> int:
    """One browser-like listen from `address`: start at byte 0, then seek further."""
    with requests.Session() as session:
        session.mount("http://", FromAddress(address))
        session.headers["User-Agent"] = user_agent
        first = session.get(url, headers={"Range": "bytes=0-"}, timeout=60)
        seek = session.get(url, headers={"Range": "bytes=5000-"}, timeout=60)
    assert first.content == AUDIO_BYTES
    assert seek.content == AUDIO_BYTES[5000:]
    return first.status_code


def listen_concurrently(url: str, user_agents: list[str], addresses: list[str]):
    with ThreadPoolExecutor(max_workers=len(user_agents)) as pool:
        return list(pool.map(listen, [url] * len(user_agents), user_agents, addresses))


@pytest.mark.postgres
def test_200_concurrent_listeners_are_all_counted(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    agents = [f"Browser/{n}" for n in range(LISTENERS)]
    assert listen_concurrently(url, agents, ADDRESSES) == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == LISTENERS
    assert Play.objects.filter(clip=clip).count() == LISTENERS
    assert clip_stats(clip=clip).listeners == LISTENERS


@pytest.mark.postgres
def test_200_concurrent_requests_of_one_listener_count_once(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    statuses = listen_concurrently(
        url, ["Browser/1"] * LISTENERS, ["127.0.0.1"] * LISTENERS
    )
    assert statuses == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == 1
    assert Play.objects.filter(clip=clip).count() == 1


@pytest.mark.postgres
def test_200_concurrent_user_agents_from_one_address_count_the_cap(gunicorn_url):
    clip = ClipFactory()
    url = f"{gunicorn_url}/api/v1/clips/{clip.pk}/stream"
    agents = [f"Browser/{n}" for n in range(LISTENERS)]
    statuses = listen_concurrently(url, agents, ["127.0.0.1"] * LISTENERS)
    assert statuses == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == PLAYS_PER_ADDRESS
    assert Play.objects.filter(clip=clip).count() == PLAYS_PER_ADDRESS
