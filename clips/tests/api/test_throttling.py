import time

import pytest

from clips.selectors import clip_stats
from clips.tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

PAYLOAD = {
    "title": "Harbour Bells",
    "genre": "ambient",
    "duration": 12.5,
    "audio_url": "https://audio.example.com/bells.mp3",
}


def test_streaming_past_the_limit_is_429_with_retry_after(client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "2/min", "clip_write": ""}
    clip = ClipFactory()
    url = f"/api/v1/clips/{clip.pk}/stream"
    # Two browsers behind one address: two listeners, one rate limit.
    assert client.get(url, HTTP_USER_AGENT="A").status_code == 200
    assert client.get(url, HTTP_USER_AGENT="B").status_code == 200
    response = client.get(url, HTTP_USER_AGENT="C")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    assert clip_stats(clip=clip).play_count == 2


def test_writes_past_the_limit_are_429_with_retry_after(curator_client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "", "clip_write": "1/hour"}
    url = "/api/v1/clips"
    assert (
        curator_client.post(url, PAYLOAD, content_type="application/json").status_code
        == 201
    )
    response = curator_client.post(url, PAYLOAD, content_type="application/json")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 60


def test_reads_are_not_limited_by_the_write_rate(client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "", "clip_write": "1/hour"}
    for _ in range(3):
        assert client.get("/api/v1/clips").status_code == 200


def test_clients_are_limited_separately(client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "1/min", "clip_write": ""}
    url = f"/api/v1/clips/{ClipFactory().pk}/stream"
    assert client.get(url, REMOTE_ADDR="192.0.2.1").status_code == 200
    assert client.get(url, REMOTE_ADDR="192.0.2.1").status_code == 429
    assert client.get(url, REMOTE_ADDR="192.0.2.2").status_code == 200


def test_a_forged_forwarded_for_does_not_escape_the_limit(client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "1/min", "clip_write": ""}
    url = f"/api/v1/clips/{ClipFactory().pk}/stream"
    assert client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200
    assert client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 429


def test_the_limit_opens_again_when_the_window_closes(client, settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "1/s", "clip_write": ""}
    url = f"/api/v1/clips/{ClipFactory().pk}/stream"
    assert client.head(url).status_code == 200
    assert client.head(url).status_code == 429
    time.sleep(1.1)
    assert client.head(url).status_code == 200
