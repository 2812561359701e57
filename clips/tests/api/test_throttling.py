import time
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from clips import caching
from clips.models import HEARD_SLOTS, ListenProgress
from clips.selectors import clip_stats
from clips.tests.factories import ClipFactory
from clips.tests.tools import free_port

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


@pytest.fixture
def redis_down(settings, monkeypatch):
    """The default cache on a Redis port where nothing listens; no line logged yet."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    settings.CLIPS_THROTTLE_RATES = {"stream": "1/min", "clip_write": ""}
    monkeypatch.setattr(caching, "_last_logged", {})
    monkeypatch.setattr(caching, "_not_logged", Counter())


def outage_lines(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Cache unavailable (rate_limit)")
    ]


def rate_limit_outages() -> float:
    sample = "clips_cache_unavailable_total"
    return REGISTRY.get_sample_value(sample, {"use": "rate_limit"})


def test_a_redis_outage_is_logged_once_a_minute_but_every_request_counts(
    client, caplog, redis_down
):
    url = f"/api/v1/clips/{ClipFactory().pk}/stream"
    before = rate_limit_outages()
    for _ in range(100):
        assert client.head(url).status_code == 200
    assert len(outage_lines(caplog)) == 1
    assert rate_limit_outages() - before == 100


def test_the_outage_is_logged_again_a_minute_later_with_what_went_unlogged(
    client, caplog, redis_down, monkeypatch
):
    url = f"/api/v1/clips/{ClipFactory().pk}/stream"
    for _ in range(10):
        client.head(url)
    monkeypatch.setitem(caching._last_logged, "rate_limit", time.monotonic() - 61)
    client.head(url)
    first, again = outage_lines(caplog)
    assert "more since" not in first
    assert again.endswith("(9 more since the last line)")


def test_a_beacon_reads_its_window_from_the_database_while_redis_is_down(
    client, redis_down
):
    clip = ClipFactory(duration=20.0)
    stream = client.get(f"/api/v1/clips/{clip.pk}/stream")
    b"".join(stream.streaming_content)
    beacon = client.post(
        f"/api/v1/clips/{clip.pk}/listens",
        {"heard": [[0, 10]]},
        content_type="application/json",
    )
    assert beacon.status_code == 204
    assert ListenProgress.objects.get().slots_heard == HEARD_SLOTS // 2
