"""Search through the API, the listener's page and the admin: the same rules on
PostgreSQL (full text) and SQLite (substrings); ranking, stems and accents are
PostgreSQL's."""

import datetime
import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from clips.catalogue import pages
from clips.models import Clip
from clips.tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"


def found(client, text: str, **more) -> list[str]:
    response = client.get(LIST_URL, {"search": text, **more})
    assert response.status_code == 200
    return [clip["title"] for clip in response.json()["results"]]


def clip(title: str, description: str = "", days_ago: int = 0) -> Clip:
    created = timezone.now() - datetime.timedelta(days=days_ago)
    return ClipFactory(title=title, description=description, created_at=created)


# The catalogue's clips with "warm", the newest first.
WARM_NEWEST_FIRST = ["Jazz piano trio", "Piano, warm and slow", "Warm piano chords"]


@pytest.fixture
def catalogue():
    clip("Warm piano chords", "Felt piano in a small room.", days_ago=3)
    clip("Piano, warm and slow", "Late night.", days_ago=2)
    clip("Jazz piano trio", "Brushes and a warm upright bass.", days_ago=1)
    clip("Rain on a tin roof", "Field recording, steady and close.")
    clip("Harp glissando", "Concert harp.", days_ago=4)
    clip("Cello drone", "Bowed, long.", days_ago=5)


def test_every_word_must_match(client, catalogue):
    assert set(found(client, "piano warm")) == {
        "Warm piano chords",
        "Piano, warm and slow",
        "Jazz piano trio",
    }


def test_quotes_ask_for_the_phrase(client, catalogue):
    assert found(client, '"warm piano"') == ["Warm piano chords"]


def test_a_minus_leaves_out_what_has_the_word(client, catalogue):
    assert set(found(client, "piano -jazz")) == {
        "Warm piano chords",
        "Piano, warm and slow",
    }


def test_or_takes_either(client, catalogue):
    assert set(found(client, "harp or cello")) == {"Harp glissando", "Cello drone"}


def test_the_last_word_may_be_unfinished(client, catalogue):
    assert set(found(client, "pian")) == set(found(client, "piano"))
    assert found(client, "tin ro") == ["Rain on a tin roof"]


def test_case_does_not_matter(client, catalogue):
    assert found(client, "CELLO") == ["Cello drone"]


def test_nothing_found_is_an_empty_page(client, catalogue):
    response = client.get(LIST_URL, {"search": "zzzz-nothing"}).json()
    assert (response["count"], response["results"]) == (0, [])


def test_the_listener_page_and_the_admin_search_the_same_way(
    client, admin_client, catalogue
):
    page = client.get("/", {"q": "piano -jazz"}).text
    assert "Warm piano chords" in page and "Jazz piano trio" not in page
    admin = admin_client.get("/admin/clips/clip/", {"q": "piano -jazz"}).text
    assert "Warm piano chords" in admin and "Jazz piano trio" not in admin


@pytest.mark.postgres
def test_titles_rank_above_descriptions_whatever_their_age(client, catalogue):
    # "warm": two titles (older) and one description (newest).
    assert found(client, "warm") == [
        "Piano, warm and slow",
        "Warm piano chords",
        "Jazz piano trio",
    ]


@pytest.mark.postgres
def test_an_ordering_asked_for_comes_before_relevance(client, catalogue):
    assert found(client, "warm", ordering="title") == [
        "Jazz piano trio",
        "Piano, warm and slow",
        "Warm piano chords",
    ]


@pytest.mark.postgres
def test_words_are_found_by_their_stem(client, catalogue):
    assert found(client, "recordings") == ["Rain on a tin roof"]


@pytest.mark.postgres
def test_accents_are_folded_both_ways(client):
    clip("Café terrace", "Cups and chatter.")
    clip("Senora", "A cafe song.")
    assert set(found(client, "cafe")) == {"Café terrace", "Senora"}
    assert set(found(client, "CAFÉ")) == {"Café terrace", "Senora"}
    assert found(client, "señora") == ["Senora"]


@pytest.mark.postgres
def test_a_changed_title_is_searched_at_once(client, curator_client, catalogue):
    cello = Clip.objects.get(title="Cello drone")
    curator_client.patch(
        f"{LIST_URL}/{cello.pk}",
        {"title": "Viola drone"},
        content_type="application/json",
    )
    assert found(client, "viola") == ["Viola drone"]
    assert found(client, "cello") == []
    Clip.objects.filter(pk=cello.pk).update(description="Now with a glockenspiel.")
    assert found(client, "glockenspiel") == ["Viola drone"]


def test_sqlite_lists_matches_newest_first(client, catalogue, settings):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("PostgreSQL ranks them (test_titles_rank_above_descriptions…)")
    assert found(client, "warm") == WARM_NEWEST_FIRST


@pytest.mark.postgres
def test_the_migration_fills_the_search_column_in_batches(client, capsys):
    ClipFactory.create_batch(3, title="Lute")
    Clip.objects.update(search_vector=None)  # as before the migration
    migration = importlib.import_module("clips.migrations.0016_catalogue")
    with connection.schema_editor() as editor:
        migration.search_vectors_fill(apps, editor)
    assert found(client, "lute") == ["Lute"] * 3
    assert "] 3/3" in capsys.readouterr().err  # the progress bar


@pytest.mark.postgres
def test_a_search_matching_more_than_can_be_ranked_lists_the_newest_first(
    client, catalogue, monkeypatch
):
    monkeypatch.setattr(pages, "EXACT_COUNT_MAX", 2)  # "warm" has 3 matches
    assert found(client, "warm") == WARM_NEWEST_FIRST


@pytest.mark.postgres
def test_a_ranked_walk_stays_ranked_when_the_matches_grow_past_the_line(
    client, catalogue, monkeypatch
):
    first = client.get(LIST_URL, {"search": "warm", "page_size": 1}).json()
    monkeypatch.setattr(pages, "EXACT_COUNT_MAX", 2)
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    walked = [page["results"][0]["title"] for page in (first, second, third)]
    assert walked == ["Piano, warm and slow", "Warm piano chords", "Jazz piano trio"]
