"""Concurrent listeners against a live server: the play counter must lose nothing."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from clips.models import Play
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory

LISTENERS = 40


def listen(url: str) -> int:
    """One browser-like listen: start at byte 0, then seek further in."""
    with requests.Session() as session:
        first = session.get(url, headers={"Range": "bytes=0-"}, timeout=30)
        seek = session.get(url, headers={"Range": "bytes=5000-"}, timeout=30)
    assert first.content == AUDIO_BYTES
    assert seek.content == AUDIO_BYTES[5000:]
    return first.status_code


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_listens_are_all_counted(live_server):
    clip = ClipFactory()
    url = f"{live_server.url}/api/v1/clips/{clip.pk}/stream"
    with ThreadPoolExecutor(max_workers=LISTENERS) as pool:
        statuses = list(pool.map(listen, [url] * LISTENERS))
    assert statuses == [206] * LISTENERS
    assert clip_stats(clip=clip).play_count == LISTENERS
    assert Play.objects.filter(clip=clip).count() == LISTENERS
