"""The listener's pages, rendered by Django: catalogue, search, clip stats."""

import datetime
import re

import pytest
from django.db import connection
from django.utils import timezone

from clips.ingest import pipeline
from clips.ingest.analysis import PEAKS_SUMMARY_BUCKETS
from clips.models import Clip, Genre
from clips.pages import CHART_HEIGHT, PAGE_SIZE, chart_bars
from clips.selectors import DailyPlays
from clips.templatetags.clips_format import duration, waveform_svg_path
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory, PlayFactory

pytestmark = pytest.mark.django_db

# The count (the planner's estimate on PostgreSQL, then at most 1,001 rows:
# clips.catalogue.pages), one SELECT of the page's clips with their waveform
# summaries, one of their previews (the players' sources).
CATALOGUE_QUERIES = 3 + (connection.vendor == "postgresql")
# The clip, its previews, its counts as they are now, plays and listeners grouped
# by day, then distinct listeners over the 30 days, and its waveform.
CLIP_PAGE_QUERIES = 6


def titles(response) -> list[str]:
    return re.findall(r'<h2><a href="/clips/\d+/">([^<]+)</a></h2>', response.text)


def test_catalogue_shows_each_clip_with_genre_duration_plays_and_a_player(client):
    clip = ClipFactory(title="Harbour Bells", genre=Genre.JAZZ, duration=75.4)
    Clip.objects.filter(pk=clip.pk).update(play_count=12)
    page = client.get("/").text
    assert "Harbour Bells" in page
    assert '<span class="genre">Jazz</span>' in page
    assert '<span class="duration">1:15</span>' in page
    assert "12 plays" in page
    assert f'src="/api/v1/clips/{clip.pk}/stream"' in page


def test_players_fetch_no_audio_until_played(client):
    """preload="none": a page view must neither load audio nor count plays."""
    ClipFactory.create_batch(3)
    page = client.get("/").text
    assert page.count("<audio ") == 3
    assert page.count('preload="none"') == 3


def test_search_needs_every_word_in_title_or_description(client):
    ClipFactory(title="Rain on the roof", description="Night storm")
    ClipFactory(title="Rain dance", description="Drums")
    ClipFactory(title="Storm", description="Wind")
    assert titles(client.get("/", {"q": "rain night"})) == ["Rain on the roof"]


def test_genre_filter_shows_only_that_genre(client):
    ClipFactory(title="Blue", genre=Genre.JAZZ)
    ClipFactory(title="Pad", genre=Genre.AMBIENT)
    assert titles(client.get("/", {"genre": "jazz"})) == ["Blue"]


def test_unknown_genre_shows_the_whole_catalogue(client):
    ClipFactory.create_batch(2)
    response = client.get("/", {"genre": "polka"})
    assert response.status_code == 200
    assert len(titles(response)) == 2


def test_no_match_says_so(client):
    ClipFactory(title="Blue")
    assert "No clips match" in client.get("/", {"q": "zzz"}).text


def test_catalogue_pages_keep_the_search_and_filter(client):
    ClipFactory.create_batch(PAGE_SIZE + 1, title="Rain", genre=Genre.JAZZ)
    first = client.get("/", {"q": "rain", "genre": "jazz"})
    assert len(titles(first)) == PAGE_SIZE
    (after,) = re.findall(
        r'href="\?q=rain&amp;genre=jazz&amp;cursor=([\w-]+)"', first.text
    )
    second = client.get("/", {"q": "rain", "genre": "jazz", "cursor": after})
    assert len(titles(second)) == 1
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    numbered = client.get("/", {"q": "rain", "genre": "jazz", "page": 2})
    assert titles(numbered) == titles(second)


@pytest.mark.parametrize("page", [{"page": 99}, {"cursor": "not-a-cursor"}])
def test_a_page_past_the_last_or_a_bad_cursor_shows_the_first_page(client, page):
    ClipFactory(title="Only")
    assert titles(client.get("/", page)) == ["Only"]


@pytest.mark.parametrize("clips", [1, PAGE_SIZE])
def test_catalogue_runs_the_same_queries_for_any_number_of_clips(
    client, django_assert_num_queries, clips
):
    for clip in ClipFactory.create_batch(clips):
        Clip.objects.filter(pk=clip.pk).update(play_count=2)
    with django_assert_num_queries(CATALOGUE_QUERIES):
        response = client.get("/")
    assert len(titles(response)) == clips


def test_pages_load_nothing_from_another_origin(client):
    clip = ClipFactory()
    for url in ("/", f"/clips/{clip.pk}/"):
        page = client.get(url).text
        assert not re.search(r'(src|href)="(https?:)?//', page), url
        # Two scripts of ours, deferred: click-to-seek on the waveforms, and the
        # players' progress reports.
        assert re.findall(r"<script\b[^>]*>", page) == [
            '<script src="/static/clips/waveform.js" defer>',
            '<script src="/static/clips/progress.js" defer>',
        ]


def test_clip_page_shows_totals_and_a_bar_per_day(client):
    clip = ClipFactory(title="Harbour Bells")
    today = timezone.now()
    Clip.objects.filter(pk=clip.pk).update(play_count=3, last_played_at=today)
    PlayFactory.create_batch(2, clip=clip, played_at=today)
    PlayFactory(clip=clip, played_at=today - datetime.timedelta(days=1))
    page = client.get(f"/clips/{clip.pk}/").text
    assert "Harbour Bells" in page
    assert "3 plays in all" in page
    assert "busiest day: 2" in page
    assert page.count("<rect ") == 30
    assert f'height="{CHART_HEIGHT:.1f}"' in page  # today's bar: the busiest, full


def test_clip_page_of_an_unplayed_clip_says_never(client):
    clip = ClipFactory()
    page = client.get(f"/clips/{clip.pk}/").text
    assert "0 plays in all" in page
    assert "last played never" in page


def test_clip_page_runs_a_fixed_number_of_queries(client, django_assert_num_queries):
    clip = ClipFactory()
    PlayFactory.create_batch(5, clip=clip)
    with django_assert_num_queries(CLIP_PAGE_QUERIES):
        response = client.get(f"/clips/{clip.pk}/")
    assert response.status_code == 200


def test_unknown_clip_page_is_a_404_page_that_leads_back(client):
    response = client.get("/clips/999/")
    assert response.status_code == 404
    assert '<a href="/">Back to the catalogue</a>' in response.text


def test_chart_scales_the_busiest_day_to_full_height():
    day = datetime.date(2026, 11, 1)
    bars = chart_bars(
        [
            DailyPlays(date=day, plays=4, listeners=2),
            DailyPlays(date=day + datetime.timedelta(days=1), plays=1, listeners=1),
            DailyPlays(date=day + datetime.timedelta(days=2), plays=0, listeners=0),
        ]
    )
    assert [bar.height for bar in bars] == [CHART_HEIGHT, CHART_HEIGHT / 4, 0]
    assert [bar.y + bar.height for bar in bars] == [CHART_HEIGHT] * 3
    assert bars[0].label == "Sun 01 Nov: 4 plays, 2 listeners"


def test_chart_of_no_plays_is_flat():
    day = datetime.date(2026, 11, 1)
    assert chart_bars([DailyPlays(date=day, plays=0, listeners=0)])[0].height == 0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(6.0, "0:06"), (59.9, "0:59"), (75.4, "1:15"), (3600, "60:00")],
)
def test_duration_reads_as_minutes_and_seconds(seconds, shown):
    assert duration(seconds) == shown


def test_clip_page_draws_the_waveform_as_inline_svg(client):
    clip = ClipFactory(audio_file__data=tone("wav"), status="pending")
    pipeline.clip_ingest(clip_id=clip.pk)
    page = client.get(f"/clips/{clip.pk}/").content.decode()
    (path,) = re.findall(r'<svg class="waveform".*?<path d="([^"]+)"', page, re.S)
    assert path.count("M") == 800  # in full here
    assert 'data-duration="2.000"' in page  # what a click seeks by
    # The whole clip is its preview: shaded all along, Opus offered first.
    assert 'data-preview-start="0.000" data-preview-duration="2.000"' in page
    opus = page.index('?format=opus" type="audio/ogg; codecs=&quot;opus&quot;"')
    assert opus < page.index('?format=preview" type="audio/mpeg"')


def test_a_clip_not_ingested_has_no_waveform_on_its_page(client):
    page = client.get(f"/clips/{ClipFactory().pk}/").content.decode()
    assert 'class="waveform"' not in page


def test_the_waveform_path_strokes_each_bucket_from_max_to_min():
    path = waveform_svg_path([-10, 20, 0, 0, -128, 127])
    assert path.width == 3
    assert path.d == "M0 108V138M1 128V129M2 1V256"


def waveform_paths(page: str) -> list[str]:
    return re.findall(r'<svg class="waveform".*?<path d="([^"]+)"', page, re.S)


def test_catalogue_draws_each_ingested_clip_s_waveform_from_its_row(
    client, django_assert_num_queries, media_root
):
    clips = [ClipFactory(audio_file__data=tone("wav"), status="pending") for _ in "ab"]
    for clip in clips:
        pipeline.clip_ingest(clip_id=clip.pk)
    ClipFactory()  # not ingested: no waveform
    for waveform in (media_root / "renditions").rglob("*.json"):
        waveform.unlink()  # the page must not need them
    with django_assert_num_queries(CATALOGUE_QUERIES):
        page = client.get("/").content.decode()
    paths = waveform_paths(page)
    assert len(paths) == 2
    assert all(path.count("M") == PEAKS_SUMMARY_BUCKETS for path in paths)
    assert 'data-duration="2.000"' in page  # what a click seeks by
    # The whole clip is its preview: shaded all along, Opus offered first.
    assert 'data-preview-start="0.000" data-preview-duration="2.000"' in page
    opus = page.index('?format=opus" type="audio/ogg; codecs=&quot;opus&quot;"')
    assert opus < page.index('?format=preview" type="audio/mpeg"')
