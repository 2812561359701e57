"""manage.py seed_catalogue: many ready clips, realistic and repeatable, quickly."""

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection

from clips.management.commands import seed_catalogue
from clips.models import Clip, ClipStatus

pytestmark = pytest.mark.django_db

CLIPS = 300


def seed(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_catalogue", "--clips", str(CLIPS), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def titles() -> list[str]:
    return list(Clip.objects.order_by("pk").values_list("title", flat=True))


def test_the_clips_are_ready_and_listed(client):
    out, err = seed()
    assert re.fullmatch(rf"Added {CLIPS} ready clips in \d+\.\d s\.\n", out)
    assert f"[##############################] {CLIPS}/{CLIPS}" in err
    body = client.get("/api/v1/clips").json()
    assert (body["count"], body["count_estimated"]) == (CLIPS, False)
    assert Clip.objects.exclude(status=ClipStatus.READY).count() == 0


def test_titles_and_descriptions_read_as_words():
    seed()
    for title, description in Clip.objects.values_list("title", "description"):
        assert re.fullmatch(r"[A-ZÀ-Þ].{4,}", title)
        assert description.endswith(".")


def test_some_clips_were_played_and_most_not():
    seed()
    played = Clip.objects.filter(play_count__gt=0)
    assert 0 < played.count() < CLIPS // 2
    assert not played.filter(last_played_at=None).exists()
    assert not Clip.objects.filter(play_count=0).exclude(last_played_at=None).exists()
    assert not Clip.objects.filter(play_count__gt=seed_catalogue.MAX_PLAYS).exists()


def test_the_same_seed_gives_the_same_titles_another_seed_others():
    seed("--seed", "7")
    first = titles()
    Clip.objects.all().delete()
    seed("--seed", "7")
    assert titles() == first
    Clip.objects.all().delete()
    seed("--seed", "8")
    assert titles() != first


def test_without_ready_audio_each_clip_names_a_url_of_its_own():
    seed()
    urls = set(Clip.objects.values_list("audio_url", flat=True))
    assert len(urls) == CLIPS
    assert not Clip.objects.exclude(audio_file="").exists()


def test_the_clips_share_the_audio_of_the_ready_clips_in_turn():
    call_command("loaddata", "sample_clips", verbosity=0)
    samples = list(Clip.objects.order_by("pk"))
    seed()
    added = Clip.objects.order_by("pk")[len(samples) :]
    for n, clip in enumerate(added):
        sample = samples[n % len(samples)]
        assert (clip.audio_file.name, clip.size_bytes, clip.audio_url) == (
            sample.audio_file.name,
            sample.size_bytes,
            "",
        )


def test_no_word_needs_escaping_in_copy_text():
    """The COPY sends titles and descriptions as they are (clips_draw's text)."""
    for words in [*seed_catalogue.WORD_LISTS.values(), *seed_catalogue.STYLES.values()]:
        for word in words:
            assert not re.search(r"[\t\n\r\\]", word), word


@pytest.mark.postgres
def test_search_finds_clips_by_a_word_of_the_vocabulary(client):
    seed()
    body = client.get("/api/v1/clips", {"search": "piano", "page_size": 100}).json()
    assert body["count"] > 0
    for clip in body["results"]:
        assert "piano" in f"{clip['title']} {clip['description']}".lower()


@pytest.mark.postgres
def test_search_folds_the_accents_of_the_vocabulary(client):
    seed()
    body = client.get("/api/v1/clips", {"search": "cafe"}).json()
    assert body["count"] > 0
    assert (
        "café" in f"{body['results'][0]['title']} {body['results'][0]['description']}"
    )


@pytest.mark.postgres
def test_the_indexes_are_there_again_after_the_load():
    def indexes() -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'clips_clip' ORDER BY indexname"
            )
            return cursor.fetchall()

    before = indexes()
    _, err = seed()
    assert "Building the" in err
    assert indexes() == before
    assert Clip.objects.filter(search_vector=None).count() == 0
