"""SSRF: a clip's audio_url must never make the server fetch from inside its network."""

import socket

import pytest
from django.core.exceptions import ValidationError
from werkzeug import Response

from clips.models import Clip
from clips.remote.origin import (
    OriginBlocked,
    OriginTooLarge,
    address_allowed,
    check_url,
    origin_open,
)
from clips.selectors import clip_stats
from clips.tests.factories import RemoteClipFactory

BLOCKED_URLS = [
    "http://127.0.0.1/a.wav",
    "http://127.1.2.3:8000/a.wav",
    "http://localhost/a.wav",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/a.wav",
    "http://[::ffff:127.0.0.1]/a.wav",
    "http://[fd00::1]/a.wav",
    "http://10.0.0.5/a.wav",
    "http://192.168.1.1/a.wav",
    "http://172.16.0.1/a.wav",
    "http://100.64.0.1/a.wav",
    "http://0.0.0.0/a.wav",
    "http://2130706433/a.wav",  # 127.0.0.1 as one decimal number
    "file:///etc/passwd",
    "gopher://audio.example.com/a.wav",
    "ftp://audio.example.com/a.wav",
]


@pytest.fixture
def resolve_to(monkeypatch):
    """Make every hostname resolve to `address`; nothing is ever sent there."""

    def install(address: str) -> None:
        def fake_getaddrinfo(host, port, *args, **kwargs):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    return install


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::1", False),  # 6to4 wrapping 10.0.0.1
        ("224.0.0.1", False),
    ],
)
def test_address_allowed(address, allowed):
    assert address_allowed(address) is allowed


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_internal_urls_are_never_fetched(url):
    with pytest.raises(OriginBlocked):
        origin_open(url, method="GET", headers={})


def test_a_hostname_resolving_to_a_private_address_is_blocked(resolve_to):
    resolve_to("10.1.2.3")
    with pytest.raises(OriginBlocked, match="non-public"):
        origin_open("http://audio.example.com/a.wav", method="GET", headers={})


def test_allowed_networks_let_a_chosen_private_range_through(settings):
    settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert address_allowed("10.1.2.3")
    assert not address_allowed("192.168.1.1")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://cdn.example.com/a.mp3", True),
        ("https://example.com/a.mp3", True),
        ("https://evil.com/a.mp3", False),
        ("https://example.com.evil.com/a.mp3", False),
    ],
)
def test_allowed_hosts_limit_where_audio_may_come_from(settings, url, ok):
    settings.CLIPS_ORIGIN_ALLOWED_HOSTS = [".example.com"]
    if ok:
        check_url(url)
    else:
        with pytest.raises(OriginBlocked):
            check_url(url)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [u for u in BLOCKED_URLS if not u.startswith(("file:", "gopher:", "http://local"))][
        :6
    ],
)
def test_an_internal_audio_url_is_refused_when_a_clip_is_added(curator_client, url):
    payload = {
        "title": "x",
        "genre": "ambient",
        "duration": 3,
        "audio_url": url,
    }
    response = curator_client.post(
        "/api/v1/clips", payload, content_type="application/json"
    )
    assert response.status_code == 400
    assert "audio_url" in response.json()["fields"]
    assert not Clip.objects.exists()


@pytest.mark.django_db
def test_model_validation_refuses_internal_urls():
    clip = RemoteClipFactory.build(audio_url="http://169.254.169.254/latest/")
    with pytest.raises(ValidationError) as error:
        clip.full_clean()
    assert "audio_url" in error.value.message_dict


@pytest.mark.django_db
def test_stream_of_a_clip_with_an_internal_url_is_502_and_counts_nothing(client):
    clip = RemoteClipFactory(audio_url="http://169.254.169.254/latest/meta-data/")
    response = client.get(f"/api/v1/clips/{clip.pk}/stream")
    assert response.status_code == 502
    assert response.json()["code"] == "origin_blocked"
    assert clip_stats(clip=clip).play_count == 0


class TestRedirects:
    @pytest.fixture(autouse=True)
    def only_the_test_origin_is_allowed(self, settings):
        """The test origin is 127.0.0.1; any other loopback address stays blocked."""
        settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["127.0.0.1/32"]

    @staticmethod
    def redirect(httpserver, path: str, location: str) -> str:
        """A URL on the test origin (as 127.0.0.1) that redirects to `location`."""
        httpserver.expect_request(path).respond_with_response(
            Response(status=302, headers={"Location": location})
        )
        return httpserver.url_for(path).replace("localhost", "127.0.0.1")

    @pytest.mark.parametrize(
        "location", ["http://127.0.0.2:9/secret", "http://169.254.169.254/"]
    )
    def test_a_redirect_to_a_private_address_is_blocked(self, httpserver, location):
        url = self.redirect(httpserver, "/hop", location)
        with pytest.raises(OriginBlocked):
            origin_open(url, method="GET", headers={})

    def test_redirects_are_followed_a_few_times_only(self, httpserver):
        url = self.redirect(httpserver, "/loop", "/loop")
        with pytest.raises(OriginBlocked, match="redirected more than"):
            origin_open(url, method="GET", headers={})

    def test_an_allowed_redirect_is_followed(self, httpserver):
        url = self.redirect(httpserver, "/old", "/new")
        httpserver.expect_request("/new").respond_with_data(
            b"RIFF", content_type="audio/wav"
        )
        response = origin_open(url, method="GET", headers={})
        assert response.content == b"RIFF"

    def test_a_redirects_fragment_is_dropped_not_refused(self, httpserver):
        url = self.redirect(httpserver, "/old", "/new#t=10")
        httpserver.expect_request("/new").respond_with_data(b"RIFF")
        assert origin_open(url, method="GET", headers={}).content == b"RIFF"

    @pytest.mark.parametrize(
        "location",
        ["http://user:pass@127.0.0.1/new", "http://127.0.0.1:9\\@example.com/"],
    )
    def test_a_redirect_to_a_url_the_rule_refuses_is_blocked(
        self, httpserver, location
    ):
        url = self.redirect(httpserver, "/hop", location)
        with pytest.raises(OriginBlocked, match=r"credentials|backslash"):
            origin_open(url, method="GET", headers={})

    def test_an_origin_larger_than_the_limit_is_refused(self, httpserver, settings):
        settings.CLIPS_ORIGIN_MAX_BYTES = 10
        httpserver.expect_request("/big").respond_with_data(b"x" * 11)
        url = httpserver.url_for("/big").replace("localhost", "127.0.0.1")
        with pytest.raises(OriginTooLarge):
            origin_open(url, method="GET", headers={})


def test_the_connected_peer_is_checked_too(httpserver, monkeypatch):
    """DNS rebinding: a name that looked public when checked, private when connected."""
    monkeypatch.setattr("clips.remote.origin._check_resolved", lambda host, port: None)
    httpserver.expect_request("/a.wav").respond_with_data(b"RIFF")
    with pytest.raises(OriginBlocked, match="connected to a non-public"):
        origin_open(httpserver.url_for("/a.wav"), method="GET", headers={})
