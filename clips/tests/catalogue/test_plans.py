"""Every list, search, sort and filter of the catalogue reads an index, proved by
PostgreSQL's own plans over 20,000 clips: a plan that reads the whole table of
clips fails here long before a million clips make it slow."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CLIPS = 20_000

SEED = """
INSERT INTO clips_clip (
    title, description, genre, duration, audio_file, audio_url, content_type,
    audio_digest, status, failure_reason, codec, ingest_starts, preview_owed,
    play_count, last_played_at, created_at, updated_at)
SELECT
    (ARRAY['Rain', 'Piano', 'Harbour', 'Drone', 'Birdsong'])[n %% 5 + 1] || ' ' || n,
    'A recording, number ' || n || CASE WHEN n %% 7 = 0 THEN ', warm.' ELSE '.' END,
    (ARRAY['ambient', 'acoustic', 'classical', 'electronic', 'field-recording',
           'hip-hop', 'jazz', 'pop', 'rock', 'tech-house', 'other'])[n %% 11 + 1],
    n %% 600 + 5, '', 'https://audio.example.com/' || n || '.mp3', 'audio/mpeg',
    '', 'ready', '', '', 0, false,
    CASE WHEN n %% 10 = 0 THEN n %% 997 ELSE 0 END,
    CASE WHEN n %% 10 = 0 THEN now() END,
    now() - n * interval '1 minute', now()
FROM generate_series(1, %s) AS n
"""

# Each request of the catalogue, as listeners (API, page), curators and the admin
# make them; the cursor pages are filled in from the first page's next link.
LISTENER_REQUESTS = [
    "/api/v1/clips",
    "/api/v1/clips?page=30",
    *(
        f"/api/v1/clips?ordering={sign}{key}"
        for key in ("created_at", "title", "duration", "play_count")
        for sign in ("", "-")
    ),
    *(
        f"/api/v1/clips?genre=jazz&ordering={sign}{key}"
        for key in ("created_at", "title", "duration", "play_count")
        for sign in ("", "-")
    ),
    "/api/v1/clips?duration_min=100&duration_max=120&ordering=duration",
    "/",
]
SEARCHES = [
    "/api/v1/clips?search=rain",
    "/api/v1/clips?search=zzzz-nothing",
    "/api/v1/clips?search=piano%20warm",
    "/api/v1/clips?search=harb",
    "/?q=rain",
]
ADMIN_REQUESTS = [
    "/admin/clips/clip/",
    "/admin/clips/clip/?o=1",  # title
    "/admin/clips/clip/?o=-1",
    "/admin/clips/clip/?genre__exact=jazz",
]


@pytest.fixture
def catalogue():
    with connection.cursor() as cursor:
        cursor.execute(SEED, [CLIPS])
        cursor.execute("ANALYZE clips_clip")


def plans(client, url: str) -> list[dict]:
    """The plan of each query of the request that reads clips."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    found = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if '"clips_clip"' not in sql or sql.startswith(("SAVEPOINT", "EXPLAIN")):
                continue
            cursor.execute(f"EXPLAIN (FORMAT JSON) {query['sql']}")
            plan = cursor.fetchone()[0]
            found.append(json.loads(plan) if isinstance(plan, str) else plan)
    return found


def nodes(plan, above: tuple = ()):
    """Each node of a plan with the node types above it."""
    for node in plan if isinstance(plan, list) else [plan]:
        node = node.get("Plan", node)
        yield node, above
        for child in node.get("Plans", []):
            yield from nodes(child, (*above, node["Node Type"]))


def table_scans(plan) -> list[str]:
    """Sequential scans of the clips, but for one that feeds a LIMIT directly: the
    count's SELECT ... LIMIT 1001 may read the first rows it meets."""
    return [
        f"{node['Node Type']} under {above}"
        for node, above in nodes(plan)
        if node["Node Type"] == "Seq Scan"
        and node.get("Relation Name") == "clips_clip"
        and above[-1:] != ("Limit",)
    ]


def sorts(plan) -> list[str]:
    """Sorts of the clips read: an order that is not an index's. (An incremental
    sort only orders the ties of an index's order.)"""
    return [
        f"Sort by {node['Sort Key']}"
        for node, _ in nodes(plan)
        if node["Node Type"] == "Sort"
    ]


@pytest.mark.parametrize("url", LISTENER_REQUESTS)
def test_a_list_is_read_in_index_order(client, catalogue, url):
    for plan in plans(client, url):
        assert table_scans(plan) == [], json.dumps(plan, indent=1)
        assert sorts(plan) == [], json.dumps(plan, indent=1)


@pytest.mark.parametrize("ordering", ["-created_at", "title", "-play_count"])
def test_a_deep_cursor_page_is_an_index_range(client, catalogue, ordering):
    first = client.get("/api/v1/clips", {"ordering": ordering}).json()
    cursor = re.search(r"cursor=([\w-]+)", first["next"]).group(1)
    # A cursor from the middle of the catalogue: the same plan at any depth.
    for plan in plans(client, f"/api/v1/clips?ordering={ordering}&cursor={cursor}"):
        assert table_scans(plan) == [], json.dumps(plan, indent=1)
        assert sorts(plan) == [], json.dumps(plan, indent=1)


@pytest.mark.parametrize("url", SEARCHES)
def test_a_search_reads_the_search_index_or_the_newest_first(client, catalogue, url):
    # A search of up to 1,000 matches ranks them, found through the search index;
    # one of more ("rain": 4,000 here) walks the newest first, unsorted.
    for plan in plans(client, url):
        text = json.dumps(plan, indent=1)
        assert table_scans(plan) == [], text
        assert "clip_search" in text or sorts(plan) == [], text


@pytest.mark.parametrize("url", ADMIN_REQUESTS)
def test_the_admin_change_list_reads_indexes(admin_client, catalogue, url):
    for plan in plans(admin_client, url):
        assert table_scans(plan) == [], json.dumps(plan, indent=1)
