"""A listen's progress: POST /api/v1/clips/{id}/listens, and the stats it makes."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.authtoken.models import Token

from clips.models import ClipStatus, ListenProgress
from clips.tests.audio import tone
from clips.tests.factories import ClipFactory, ingested_clip, stream_url

pytestmark = pytest.mark.django_db

PLAYER = "https://player.example.com"


@pytest.fixture
def clip():
    return ClipFactory(duration=20.0)  # no preview: the window is the whole clip


def listens_url(clip) -> str:
    return f"/api/v1/clips/{clip.pk}/listens"


def streamed(client, clip) -> None:
    """A listen counted: the whole stream, as a player's first request."""
    response = client.get(stream_url(clip))
    assert response.status_code == 200
    b"".join(response.streaming_content)


def heard(client, clip, ranges, **options):
    return client.post(
        listens_url(clip),
        json.dumps({"heard": ranges}),
        content_type=options.pop("content_type", "application/json"),
        **options,
    )


def listening(client, clip) -> dict:
    return client.get(f"/api/v1/clips/{clip.pk}/stats").json()["listening"]


def test_a_listen_heard_half_way_shows_the_first_half(client, clip):
    streamed(client, clip)
    assert heard(client, clip, [[0, 10]]).status_code == 204
    stats = listening(client, clip)
    assert stats["listens"] == 1
    assert stats["completion_rate"] == 0.0
    assert stats["median_heard_seconds"] == 10.0
    assert stats["retention"] == [1.0] * 10 + [0.0] * 10


def test_beacons_merge_and_one_sent_twice_counts_once(client, clip):
    streamed(client, clip)
    for ranges in ([[0, 4]], [[4, 8]], [[0, 8]], [[15, 20]]):
        assert heard(client, clip, ranges).status_code == 204
    assert ListenProgress.objects.count() == 1
    stats = listening(client, clip)
    assert stats["median_heard_seconds"] == 13.0
    assert stats["retention"] == [1.0] * 8 + [0.0] * 7 + [1.0] * 5


def test_heard_to_the_end_completes_and_ranges_are_clipped_to_the_stream(client, clip):
    streamed(client, clip)
    assert heard(client, clip, [[0, 500], [900, 1000]]).status_code == 204
    stats = listening(client, clip)
    assert (stats["completion_rate"], stats["median_heard_seconds"]) == (1.0, 20.0)


def test_two_listeners_make_the_shares(clip):
    first, second = Client(HTTP_USER_AGENT="A"), Client(HTTP_USER_AGENT="B")
    for client, end in ((first, 20), (second, 5)):
        streamed(client, clip)
        heard(client, clip, [[0, end]])
    stats = listening(first, clip)
    assert stats["listens"] == 2
    assert stats["completion_rate"] == 0.5
    assert stats["retention"][:5] == [1.0] * 5
    assert stats["retention"][5:] == [0.5] * 15


def test_no_counted_listen_is_a_409(client, clip):
    response = heard(client, clip, [[0, 5]])
    assert response.status_code == 409
    assert response.json()["code"] == "no_open_listen"
    assert not ListenProgress.objects.exists()


def test_a_curators_token_is_read_and_their_listens_never_count(client, curator):
    token = Token.objects.get(user=curator).key
    pending = ClipFactory(status=ClipStatus.PENDING)  # a 404 to listeners
    response = heard(client, pending, [[0, 1]], HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 409
    assert response.json()["code"] == "no_open_listen"
    bad = heard(client, pending, [[0, 1]], HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.status_code == 401


def test_another_listeners_listen_is_not_theirs(clip):
    streamed(Client(HTTP_USER_AGENT="A"), clip)
    assert heard(Client(HTTP_USER_AGENT="B"), clip, [[0, 5]]).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"heard": "0-5"},
        {"heard": [[0, 5, 6]]},
        {"heard": [[0]]},
        {"heard": [["0", "5"]]},
        {"heard": [[5, 1]]},
        {"heard": [[-1, 5]]},
        {"heard": [[0, 1]] * 101},
        {"ranges": [[0, 5]]},
    ],
)
def test_malformed_progress_is_a_400(client, clip, body):
    streamed(client, clip)
    response = client.post(
        listens_url(clip), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid"
    for messages in error["fields"].values():  # the schema's shape, nested or not
        assert messages and all(isinstance(message, str) for message in messages)


def test_each_bad_range_is_named_by_its_place(client, clip):
    streamed(client, clip)
    response = heard(client, clip, [[0, 1], [5, 1], [2, -1]])
    assert response.json()["fields"] == {
        "heard": [
            "[1] A range ends at or after its start.",
            "[2][1] Ensure this value is greater than or equal to 0.",
        ]
    }


@pytest.mark.parametrize("body", ["{", " " * 4097 + '{"heard": []}'])
def test_a_body_not_json_or_over_4_kb_is_a_400(client, clip, body):
    streamed(client, clip)
    response = client.post(listens_url(clip), body, content_type="application/json")
    assert response.status_code == 400


def test_a_beacon_comes_as_text_plain_without_a_csrf_token(clip):
    user = get_user_model().objects.create_user("listener", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    streamed(client, clip)
    response = heard(client, clip, [[0, 20]], content_type="text/plain;charset=UTF-8")
    assert response.status_code == 204
    assert listening(client, clip)["completion_rate"] == 1.0


def test_other_bodies_are_a_415(client, clip):
    streamed(client, clip)
    response = client.post(listens_url(clip), {"heard": "0"})  # a multipart form
    assert response.status_code == 415


def test_beacons_are_throttled_per_listener(client, clip, settings):
    settings.CLIPS_THROTTLE_RATES = {**settings.CLIPS_THROTTLE_RATES, "listen": "2/min"}
    streamed(client, clip)
    assert heard(client, clip, [[0, 1]]).status_code == 204
    assert heard(client, clip, [[1, 2]]).status_code == 204
    assert heard(client, clip, [[2, 3]]).status_code == 429
    other = Client(HTTP_USER_AGENT="another browser")
    streamed(other, clip)
    assert heard(other, clip, [[0, 1]]).status_code == 204


def test_a_player_elsewhere_may_report(client, clip):
    streamed(client, clip)
    preflight = client.options(
        listens_url(clip),
        headers={"Origin": PLAYER, "Access-Control-Request-Method": "POST"},
    )
    assert preflight["Access-Control-Allow-Origin"] == PLAYER
    response = heard(client, clip, [[0, 1]], headers={"Origin": PLAYER})
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == PLAYER


def test_stats_without_progress(client, clip):
    assert listening(client, clip) == {
        "listens": 0,
        "completion_rate": None,
        "median_heard_seconds": None,
        "retention": [0.0] * 20,
    }


def test_the_admin_draws_the_curve_over_the_waveform(client, admin_client):
    clip = ingested_clip(tone("wav", seconds=8))
    streamed(client, clip)
    assert heard(client, clip, [[0, 4]]).status_code == 204
    page = admin_client.get(f"/admin/clips/clip/{clip.pk}/change/").text
    (points,) = re.findall(r'<polyline class="retention" points="([^"]+)"', page)
    heights = [float(point.split(",")[1]) for point in points.split()]
    assert heights[:10] == [0.0] * 10  # everyone: the top
    assert len(set(heights[10:])) == 1 and heights[10] > 0  # nobody: the bottom
    assert "1 listens reported progress: 0% heard it to the end" in page


def test_a_beacon_is_one_upsert_once_the_window_is_kept(
    client, clip, django_assert_num_queries
):
    streamed(client, clip)
    with django_assert_num_queries(2):  # the clip's window, then kept; the upsert
        assert heard(client, clip, [[0, 1]]).status_code == 204
    with django_assert_num_queries(1):
        assert heard(client, clip, [[1, 2]]).status_code == 204


def test_a_kept_window_goes_with_a_change_to_the_clip(client, clip):
    streamed(client, clip)
    assert heard(client, clip, [[0, 10]]).status_code == 204  # half of 20 s
    clip.duration = 40.0
    clip.save()
    other = Client(HTTP_USER_AGENT="another listener")
    streamed(other, clip)
    assert heard(other, clip, [[0, 10]]).status_code == 204  # a quarter of 40 s
    assert sorted(
        ListenProgress.objects.values_list("window_seconds", "slots_heard")
    ) == [
        (20.0, 120),
        (40.0, 60),
    ]


def test_the_admin_lists_and_sorts_clips_by_completion(admin_client):
    rates = {"Finished": 20, "Half": 10, "Unheard": None}
    for title, end in rates.items():
        clip = ClipFactory(title=title, duration=20.0)
        if end is not None:
            listener = Client(HTTP_USER_AGENT=title)
            streamed(listener, clip)
            heard(listener, clip, [[0, end]])
    for order, expected in (("10", ["-", "0%", "100%"]), ("-10", ["100%", "0%", "-"])):
        page = admin_client.get("/admin/clips/clip/", {"o": order}).text
        assert "Heard to the end" in page
        cells = re.findall(r'<td class="field-completion">([^<]*)</td>', page)
        assert cells == expected, order


def test_the_first_report_of_an_end_counts_the_listen_in_prometheus(client, clip):
    def observed() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("clips_listen_heard_ratio_count") or 0
        total = REGISTRY.get_sample_value("clips_listen_heard_ratio_sum") or 0
        return count, total

    before = observed()
    streamed(client, clip)
    client.post(
        listens_url(clip),
        json.dumps({"heard": [[0, 5]]}),
        content_type="application/json",
    )
    assert observed() == before  # not ended yet
    for end in (10, 20):  # the page ended, then went: one listen, counted once
        client.post(
            listens_url(clip),
            json.dumps({"heard": [[0, end]], "ended": True}),
            content_type="application/json",
        )
    count, total = observed()
    assert (count - before[0], total - before[1]) == (1, 0.5)
