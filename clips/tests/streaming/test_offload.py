"""The hand-over to nginx (CLIPS_STREAM_OFFLOAD) and how long nginx may repeat it.

X-Accel-Expires lets nginx answer the same request of the same listener again
without Django (deploy/nginx, the stream decisions): never past the moment a repeat
could count a play, so plays stay exact whatever nginx keeps.
"""

import pytest
from django.test import override_settings

from clips.models import Clip
from clips.tests.factories import ingested_clip, stream_url

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("offload"),
]

REPEAT_SECONDS = 10
WINDOW_SECONDS = 6


@pytest.fixture
def offload():
    with override_settings(
        CLIPS_STREAM_OFFLOAD=True,
        CLIPS_STREAM_REPEAT_SECONDS=REPEAT_SECONDS,
        CLIPS_LISTEN_WINDOW_SECONDS=WINDOW_SECONDS,
    ):
        yield


def repeat_seconds(response) -> int:
    assert response.status_code in (200, 206)
    assert response["X-Accel-Redirect"].startswith("/_protected/")
    return int(response["X-Accel-Expires"])


@pytest.fixture
def clip() -> Clip:
    return ingested_clip()


def test_a_listen_is_repeated_until_its_window_closes(client, clip):
    # The window closes in 6 s (noted a second early): the repeat stops before.
    counted = repeat_seconds(client.get(stream_url(clip)))
    assert 0 < counted <= WINDOW_SECONDS - 1
    again = repeat_seconds(client.get(stream_url(clip)))
    assert 0 < again <= counted


def test_a_long_window_is_repeated_for_the_setting_at_most(client, clip, settings):
    settings.CLIPS_LISTEN_WINDOW_SECONDS = 1800
    assert repeat_seconds(client.get(stream_url(clip))) == REPEAT_SECONDS


def test_a_request_that_starts_no_listen_is_repeated_for_the_setting(client, clip):
    seek = client.get(stream_url(clip), HTTP_RANGE="bytes=1000-")
    assert repeat_seconds(seek) == REPEAT_SECONDS


def test_a_listener_over_its_addresss_cap_is_repeated_until_its_window_closes(
    client, clip, settings
):
    settings.CLIPS_PLAYS_PER_ADDRESS = 1
    client.get(stream_url(clip), HTTP_USER_AGENT="First")
    over_cap = client.get(stream_url(clip), HTTP_USER_AGENT="Second")
    assert 0 < repeat_seconds(over_cap) <= WINDOW_SECONDS - 1


def test_staff_are_never_repeated(admin_client, clip):
    assert repeat_seconds(admin_client.get(stream_url(clip))) == 0


def test_0_turns_the_repeat_off(client, clip, settings):
    settings.CLIPS_STREAM_REPEAT_SECONDS = 0
    assert repeat_seconds(client.get(stream_url(clip))) == 0


def test_what_is_no_hand_over_is_never_repeated(client, clip):
    """Errors, 304s and HEADs are Django's own answers: nothing for nginx to keep."""
    first = client.get(stream_url(clip))
    answers = [
        client.head(stream_url(clip)),
        client.get(stream_url(clip), HTTP_IF_NONE_MATCH=first["ETag"]),
        client.get(stream_url(clip), HTTP_RANGE=f"bytes={10**9}-"),
        client.get(stream_url(clip), HTTP_IF_MATCH=first["ETag"]),
        client.get(f"/api/v1/clips/{clip.pk + 1000}/stream"),
    ]
    assert [a.status_code for a in answers] == [200, 304, 416, 200, 404]
    assert not [a for a in answers if "X-Accel-Expires" in a]
