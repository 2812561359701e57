"""A stream decision in one round trip to the cache: a ready clip's facts and the
note of a counted listen are kept there, so a repeated stream asks the database
nothing; any change to the clip or its renditions is seen at once."""

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clips import caching, services
from clips.models import RenditionName
from clips.selectors import clip_stats
from clips.streaming import facts
from clips.tests.audio import tone
from clips.tests.factories import ingested_clip, stream_url
from clips.tests.tools import redis_env

pytestmark = pytest.mark.django_db


def test_a_repeated_stream_asks_the_database_nothing(client, django_assert_num_queries):
    clip = ingested_clip()
    first = client.get(stream_url(clip))
    with django_assert_num_queries(0):
        again = client.get(stream_url(clip))
        seek = client.get(stream_url(clip), HTTP_RANGE="bytes=1000-")
    assert (first.status_code, again.status_code, seek.status_code) == (200, 200, 206)
    assert again["ETag"] == first["ETag"]
    assert b"".join(again.streaming_content) == b"".join(first.streaming_content)
    assert clip_stats(clip=clip).play_count == 1


def test_a_new_listener_costs_only_the_plays_statement(client):
    clip = ingested_clip()
    client.get(stream_url(clip), HTTP_USER_AGENT="First")
    with CaptureQueriesContext(connection) as queries:
        client.get(stream_url(clip), HTTP_USER_AGENT="Second")
    assert clip_stats(clip=clip).play_count == 2
    read = [q["sql"] for q in queries if q["sql"].lstrip().startswith("SELECT")]
    assert not [sql for sql in read if "clips_clip" in sql.split("FROM", 1)[-1]]
    if connection.vendor == "postgresql":
        assert len(queries) == 1  # the play, in one statement


@pytest.mark.parametrize("audio_format", ["preview", "original"])
def test_kept_facts_are_those_of_the_database(client, audio_format):
    clip = ingested_clip()
    url = f"{stream_url(clip)}?format={audio_format}"
    from_database = client.head(url)
    from_cache = client.head(url)
    assert from_database.headers == from_cache.headers
    if audio_format == "preview":
        assert from_cache["Content-Type"] == "audio/mpeg"


def test_a_deleted_clip_is_a_404_at_once(client):
    clip = ingested_clip()
    url = stream_url(clip)
    assert client.get(url).status_code == 200
    clip.delete()
    response = client.get(url)
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_new_audio_hides_the_clip_at_once(client, django_capture_on_commit_callbacks):
    clip = ingested_clip()
    assert client.get(stream_url(clip)).status_code == 200
    clip.audio_file = ContentFile(tone("wav", seconds=3), name="new.wav")
    services.clip_save(clip=clip)  # pending until its ingest (on commit)
    assert client.get(stream_url(clip)).status_code == 404


def test_a_lost_preview_is_not_sent_from_kept_facts(client):
    clip = ingested_clip()
    client.head(stream_url(clip))
    clip.renditions.filter(name=RenditionName.PREVIEW).get().delete()
    assert client.head(stream_url(clip))["Content-Type"] == "audio/wav"  # original


def test_facts_read_before_a_change_committed_are_not_taken_after_it():
    clip = ingested_clip()
    keys = facts.facts_keys(clip_id=clip.pk, audio_format="preview")
    generation = cache.get(keys[1])  # read first, as a stream does
    stale = facts.ClipAudio(
        genre=clip.genre,
        audio=facts.StoredAudio(
            files=clip.audio_file.storage,
            name="renditions/gone.mp3",
            content_type="audio/mpeg",
            digest="0" * 64,
            size=1,
            modified=clip.ingested_at,
        ),
    )
    caching.clip_changed(clip_id=clip.pk)  # a change commits meanwhile
    facts.facts_keep(
        clip_id=clip.pk, audio_format="preview", generation=generation, facts=stale
    )
    assert facts.facts_found([cache.get(key) for key in keys]) is None


def test_count_and_read_on_redis_is_one_window_and_the_values(settings):
    with redis_env() as env:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": env["REDIS_URL"],
                "KEY_PREFIX": env["CACHE_KEY_PREFIX"],
            }
        }
        cache.set("kept", {"a": 1})
        cache.set("number", 7)
        counts = [
            caching.count_and_read(counter="window", window=60, keys=["kept", "none"])
            for _ in range(3)
        ]
        assert [counted.count for counted, _ in counts] == [1, 2, 3]
        assert all(59 < counted.seconds_left <= 60 for counted, _ in counts)
        assert counts[0][1] == [{"a": 1}, None]
        assert caching.count_and_read(counter=None, window=0, keys=["number"]) == (
            None,
            [7],
        )
        assert cache.get("window") == 3  # Django's own API reads the same count


def test_a_counted_listen_whose_note_was_lost_is_noted_again(
    client, django_assert_num_queries
):
    clip = ingested_clip()
    client.get(stream_url(clip))
    cache.clear()  # Redis restarted: the database alone knows the window is open
    client.get(stream_url(clip))
    with django_assert_num_queries(0):
        client.get(stream_url(clip))
    assert clip_stats(clip=clip).play_count == 1
