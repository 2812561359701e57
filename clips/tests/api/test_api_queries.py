"""The API stays cheap per clip: constant SQL for any page size, URLs per clip."""

import pytest
from django.db import connection

from clips.models import Clip
from clips.tests.factories import ClipFactory

pytestmark = pytest.mark.django_db

# The count (the planner's estimate on PostgreSQL, then at most 1,001 rows:
# clips.catalogue.pages), one SELECT of the page, one of its previews (renditions).
LIST_QUERIES = 3 + (connection.vendor == "postgresql")
# One SELECT of the clip, one of its previews.
DETAIL_QUERIES = 2


@pytest.fixture
def catalogue():
    """Fifty clips, half of them played, so both sides of the join are exercised."""
    clips = ClipFactory.create_batch(50)
    for clip in clips[::2]:
        Clip.objects.filter(pk=clip.pk).update(play_count=3)
    return clips


@pytest.mark.parametrize("page_size", [1, 10, 50])
def test_list_runs_the_same_queries_for_any_page_size(
    client, catalogue, django_assert_num_queries, page_size
):
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/v1/clips", {"page_size": page_size})
    assert len(response.json()["results"]) == page_size


@pytest.mark.parametrize("page_size", [1, 50])
def test_filtered_and_ordered_list_runs_the_same_queries(
    client, catalogue, django_assert_num_queries, page_size
):
    params = {"page_size": page_size, "genre": "ambient", "ordering": "-play_count"}
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/api/v1/clips", params)
    assert response.json()["results"][0]["play_count"] == 3


def test_detail_runs_one_query(client, catalogue, django_assert_num_queries):
    with django_assert_num_queries(DETAIL_QUERIES):
        response = client.get(f"/api/v1/clips/{catalogue[0].pk}")
    assert response.json()["play_count"] == 3


def test_each_listed_clip_links_to_its_own_stream_and_stats(client, catalogue):
    """The list builds its URLs from one reversed template: each must get its id."""
    results = client.get("/api/v1/clips", {"page_size": 50}).json()["results"]
    for clip in results:
        base = f"http://testserver/api/v1/clips/{clip['id']}"
        assert (clip["stream_url"], clip["stats_url"]) == (
            f"{base}/stream",
            f"{base}/stats",
        )
