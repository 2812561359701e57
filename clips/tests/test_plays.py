"""A play is a listen: one per listener and clip within the listen window.

Each test of TestWhatCounts is one thing clients do (probes, players reopening,
curators previewing, listeners sharing an address) and what it counts.
"""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY

from clips import plays
from clips.models import AddressWindow, Listen, ListenerKey, Play
from clips.selectors import clip_stats
from clips.tests.factories import ClipFactory, UserFactory, stream_url


def notes_expired() -> None:
    """The cache's notes of counted listens (plays.listening_key) expire with their
    window: a test that closes windows in the database lets them go too."""
    cache.clear()


pytestmark = pytest.mark.django_db


def play_count(clip) -> int:
    return clip_stats(clip=clip).play_count


@pytest.fixture(autouse=True)
def no_stream_limit(settings):
    settings.CLIPS_THROTTLE_RATES = {"stream": "", "clip_write": ""}


@pytest.mark.parametrize(
    ("first_byte", "length", "size", "counts"),
    [
        (0, None, None, True),  # a remote body of unknown length
        (0, 10_000, 10_000, True),  # the whole file
        (0, 4096, 10_000, True),
        (0, 4095, 10_000, False),  # a probe: the header, a few bytes
        (0, 3, 10_000, False),  # Safari's bytes=0-1, ranges like bytes=0-2
        (0, 300, 300, True),  # a tiny file, sent whole
        (1, None, None, False),
        (5000, 100, 10_000, False),  # a seek
        (None, None, None, False),  # a suffix range of a remote clip
    ],
)
def test_which_answers_can_start_a_listen(first_byte, length, size, counts):
    assert plays.is_listen(first_byte=first_byte, length=length, size=size) is counts


class TestWhatCounts:
    def test_a_thousand_three_byte_probes_count_nothing(self, client):
        clip = ClipFactory()
        for _ in range(1000):
            response = client.get(stream_url(clip), HTTP_RANGE="bytes=0-2")
            assert response.status_code == 206
        assert play_count(clip) == 0

    def test_the_same_full_get_ten_times_is_one_play(self, client):
        clip = ClipFactory()
        for _ in range(10):
            assert client.get(stream_url(clip)).status_code == 200
        assert play_count(clip) == 1

    def test_a_player_that_probes_a_kilobyte_then_plays_is_one_play(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-1023")
        assert play_count(clip) == 0
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-")
        client.get(stream_url(clip), HTTP_RANGE="bytes=5000-")
        assert play_count(clip) == 1

    def test_a_player_reopening_at_byte_zero_is_one_play(self, client):
        clip = ClipFactory()
        agent = "AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X)"
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-1", HTTP_USER_AGENT=agent)
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-", HTTP_USER_AGENT=agent)
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-", HTTP_USER_AGENT=agent)
        assert play_count(clip) == 1

    def test_a_curator_previewing_in_the_admin_is_no_play(self, curator_client):
        clip = ClipFactory()
        admin_page = curator_client.get(f"/admin/clips/clip/{clip.pk}/change/")
        assert stream_url(clip) in admin_page.content.decode()
        response = curator_client.get(stream_url(clip))
        assert response.status_code == 200
        assert play_count(clip) == 0

    def test_a_signed_in_listener_is_one_listener_from_any_address(self, client):
        client.force_login(UserFactory())
        clip = ClipFactory()
        client.get(stream_url(clip), REMOTE_ADDR="192.0.2.1")
        client.get(stream_url(clip), REMOTE_ADDR="198.51.100.7")
        assert play_count(clip) == 1


class TestListeners:
    def test_two_browsers_behind_one_address_are_two_listeners(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_USER_AGENT="Firefox")
        client.get(stream_url(clip), HTTP_USER_AGENT="Chrome")
        assert play_count(clip) == 2
        assert clip_stats(clip=clip).listeners == 2

    def test_two_addresses_are_two_listeners(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), REMOTE_ADDR="192.0.2.1")
        client.get(stream_url(clip), REMOTE_ADDR="192.0.2.2")
        assert play_count(clip) == 2

    def test_one_listener_counts_once_per_clip_not_once_overall(self, client):
        first, second = ClipFactory(), ClipFactory()
        client.get(stream_url(first))
        client.get(stream_url(second))
        assert (play_count(first), play_count(second)) == (1, 1)

    def test_a_forged_forwarded_for_is_ignored_without_proxies(self, client):
        clip = ClipFactory()
        for address in ("192.0.2.1", "192.0.2.2"):
            client.get(stream_url(clip), HTTP_X_FORWARDED_FOR=address)
        assert play_count(clip) == 1

    def test_behind_a_proxy_the_forwarded_address_is_the_listener(
        self, client, settings
    ):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
        clip = ClipFactory()
        for address in ("192.0.2.1", "192.0.2.2", "192.0.2.2"):
            client.get(stream_url(clip), HTTP_X_FORWARDED_FOR=address)
        assert play_count(clip) == 2

    def test_no_address_is_stored(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), REMOTE_ADDR="203.0.113.77")
        stored = [
            *Play.objects.values_list("listener", flat=True),
            *Listen.objects.values_list("listener", flat=True),
            *AddressWindow.objects.values_list("address", flat=True),
        ]
        assert len(stored) == 3
        assert all("203.0.113" not in value for value in stored)
        assert all(value.startswith(("anon:", "addr:")) for value in stored)

    def test_the_anonymous_key_changes_every_day_and_old_keys_go(self, rf, monkeypatch):
        request = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="Firefox")
        request.user = AnonymousUser()
        today = timezone.now()
        tomorrow = today + datetime.timedelta(days=1)
        monkeypatch.setattr(plays.timezone, "now", lambda: today)
        first = plays.listener_of(request)
        assert plays.listener_of(request) == first
        monkeypatch.setattr(plays.timezone, "now", lambda: tomorrow)
        assert plays.listener_of(request) != first
        assert list(ListenerKey.objects.values_list("day", flat=True)) == [
            tomorrow.date()
        ]

    def test_staff_are_nobody_and_users_are_themselves(self, rf):
        request = rf.get("/")
        request.user = UserFactory(is_staff=True)
        assert plays.listener_of(request) is None
        request.user = user = UserFactory()
        assert plays.listener_of(request) == f"user:{user.pk}"


class TestAddressCap:
    """Anonymous listeners are told apart by User-Agent, which a client chooses: at
    most CLIPS_PLAYS_PER_ADDRESS of them count per address, clip and window."""

    @pytest.fixture(autouse=True)
    def cap(self, settings):
        settings.CLIPS_PLAYS_PER_ADDRESS = 3

    def test_a_hundred_user_agents_from_one_address_count_the_cap(self, client):
        clip = ClipFactory()
        for n in range(100):
            response = client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
            assert response.status_code == 200
        assert play_count(clip) == 3
        assert clip_stats(clip=clip).listeners == 3

    def test_the_cap_is_per_address(self, client):
        clip = ClipFactory()
        for address in ("192.0.2.1", "192.0.2.2"):
            for n in range(5):
                client.get(
                    stream_url(clip), REMOTE_ADDR=address, HTTP_USER_AGENT=f"B/{n}"
                )
        assert play_count(clip) == 6

    def test_the_cap_is_per_clip(self, client):
        first, second = ClipFactory(), ClipFactory()
        for clip in (first, second):
            for n in range(5):
                client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
        assert (play_count(first), play_count(second)) == (3, 3)

    def test_addresses_in_one_ipv6_64_share_the_cap(self, client):
        clip = ClipFactory()
        for n in range(5):
            client.get(stream_url(clip), REMOTE_ADDR=f"2001:db8:1:2::{n + 1}")
        client.get(stream_url(clip), REMOTE_ADDR="2001:db8:1:3::1")
        assert play_count(clip) == 4

    def test_signed_in_listeners_are_not_capped_by_address(self, client):
        clip = ClipFactory()
        for _ in range(5):
            client.force_login(UserFactory())
            client.get(stream_url(clip))
        assert play_count(clip) == 5

    def test_the_cap_opens_again_when_the_window_closes(self, client, settings):
        clip = ClipFactory()
        for n in range(5):
            client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
        long_ago = timezone.now() - datetime.timedelta(
            seconds=settings.CLIPS_LISTEN_WINDOW_SECONDS + 1
        )
        Listen.objects.update(started_at=long_ago)
        AddressWindow.objects.update(started_at=long_ago)
        notes_expired()
        for n in range(5):
            client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
        assert play_count(clip) == 6

    def test_0_turns_the_cap_off(self, client, settings):
        settings.CLIPS_PLAYS_PER_ADDRESS = 0
        clip = ClipFactory()
        for n in range(10):
            client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
        assert play_count(clip) == 10

    def test_listens_over_the_cap_count_in_their_own_counter(self, client):
        clip = ClipFactory()

        def over_cap() -> float:
            return REGISTRY.get_sample_value("clips_listens_over_address_cap_total")

        before = over_cap()
        for n in range(5):
            client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
            client.get(stream_url(clip), HTTP_USER_AGENT=f"Browser/{n}")
        assert over_cap() - before == 2


class TestListenWindow:
    def test_a_new_window_counts_again(self, client, settings):
        clip = ClipFactory()
        client.get(stream_url(clip))
        Listen.objects.update(
            started_at=timezone.now()
            - datetime.timedelta(seconds=settings.CLIPS_LISTEN_WINDOW_SECONDS + 1)
        )
        notes_expired()
        client.get(stream_url(clip))
        client.get(stream_url(clip))
        assert play_count(clip) == 2

    def test_closed_windows_are_deleted(self, client, monkeypatch):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_USER_AGENT="old")
        Listen.objects.update(started_at=timezone.now() - datetime.timedelta(days=1))
        monkeypatch.setattr(plays, "_last_sweep", 0.0)
        client.get(stream_url(clip), HTTP_USER_AGENT="new")
        assert list(Listen.objects.values_list("listener", flat=True)) == [
            Play.objects.latest("played_at").listener
        ]

    def test_the_window_is_a_setting(self, client, settings):
        settings.CLIPS_LISTEN_WINDOW_SECONDS = 0
        clip = ClipFactory()
        client.get(stream_url(clip))
        client.get(stream_url(clip))
        assert play_count(clip) == 2


class TestAnswersThatNeverCount:
    def test_head(self, client):
        clip = ClipFactory()
        client.head(stream_url(clip))
        assert play_count(clip) == 0

    def test_304(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        assert client.get(stream_url(clip), HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert play_count(clip) == 0

    def test_412(self, client):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_IF_MATCH='"other"')
        assert response.status_code == 412
        assert play_count(clip) == 0

    def test_416(self, client):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_RANGE="bytes=99999-")
        assert response.status_code == 416
        assert play_count(clip) == 0

    def test_429(self, client, settings):
        settings.CLIPS_THROTTLE_RATES = {"stream": "1/min", "clip_write": ""}
        clip = ClipFactory()
        client.head(stream_url(clip))
        assert client.get(stream_url(clip)).status_code == 429
        assert play_count(clip) == 0


def test_listeners_per_day_next_to_plays(client):
    clip = ClipFactory()
    for agent in ("A", "B", "A"):
        client.get(stream_url(clip), HTTP_USER_AGENT=agent)
    Listen.objects.all().delete()  # as if the window had closed: A listens again
    notes_expired()
    client.get(stream_url(clip), HTTP_USER_AGENT="A")
    stats = clip_stats(clip=clip)
    assert (stats.play_count, stats.listeners) == (3, 2)
    assert (stats.plays_per_day[-1].plays, stats.plays_per_day[-1].listeners) == (3, 2)
    data = client.get(f"/api/v1/clips/{clip.pk}/stats").json()
    assert data["listeners"] == 2
    assert data["plays_per_day"][-1] == {
        "date": timezone.now().date().isoformat(),
        "plays": 3,
        "listeners": 2,
    }


def test_plays_count_in_the_prometheus_counter_only_when_counted(client):
    clip = ClipFactory()
    labels = {"clip_id": str(clip.pk), "genre": clip.genre}

    def counted() -> float:
        return REGISTRY.get_sample_value("clips_streams_total", labels) or 0.0

    before = counted()
    for _ in range(3):
        client.get(stream_url(clip))
    client.get(stream_url(clip), HTTP_RANGE="bytes=0-2")
    assert counted() - before == 1
