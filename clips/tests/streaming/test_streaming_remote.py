import socket

import pytest
from django.urls import reverse
from werkzeug import Response

from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, RemoteClipFactory


def _origin_handler(request):
    """A Range-aware origin serving AUDIO_BYTES, like a static file server would."""
    header = request.headers.get("Range", "")
    if header.startswith("bytes=") and "-" in header:
        first, _, last = header[6:].partition("-")
        start = int(first) if first else len(AUDIO_BYTES) - int(last)
        end = int(last) if first and last else len(AUDIO_BYTES) - 1
        if start >= len(AUDIO_BYTES):
            return Response(status=416, headers={"Content-Range": "bytes */10000"})
        return Response(
            AUDIO_BYTES[start : end + 1],
            status=206,
            content_type="audio/wav",
            headers={"Content-Range": f"bytes {start}-{end}/{len(AUDIO_BYTES)}"},
        )
    return Response(AUDIO_BYTES, content_type="audio/wav", headers={"ETag": '"v1"'})


@pytest.fixture(autouse=True)
def loopback_origins_allowed(settings):
    """The test origin runs on loopback, which production never fetches from."""
    settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]


@pytest.fixture
def origin(httpserver):
    httpserver.expect_request("/clip.wav").respond_with_handler(_origin_handler)
    return httpserver


@pytest.fixture
def remote_clip(origin):
    return RemoteClipFactory(audio_url=origin.url_for("/clip.wav"))


def stream(client, clip, **headers):
    return client.get(reverse("clip-stream", args=[clip.pk]), **headers)


@pytest.mark.django_db
class TestStreamRemote:
    def test_remote_audio_is_relayed_and_counted(self, client, remote_clip):
        response = stream(client, remote_clip)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == AUDIO_BYTES
        assert response["Content-Type"] == "audio/wav"
        assert response["Content-Length"] == str(len(AUDIO_BYTES))
        assert response["ETag"] == '"v1"'
        assert clip_stats(clip=remote_clip).play_count == 1

    def test_range_is_passed_to_the_origin(self, client, remote_clip):
        response = stream(client, remote_clip, HTTP_RANGE="bytes=100-199")
        assert response.status_code == 206
        assert response["Content-Range"] == "bytes 100-199/10000"
        assert b"".join(response.streaming_content) == AUDIO_BYTES[100:200]
        assert clip_stats(clip=remote_clip).play_count == 0

    def test_range_from_zero_counts(self, client, remote_clip):
        stream(client, remote_clip, HTTP_RANGE="bytes=0-")
        assert clip_stats(clip=remote_clip).play_count == 1

    def test_origin_416_is_passed_on(self, client, remote_clip):
        response = stream(client, remote_clip, HTTP_RANGE="bytes=20000-")
        assert response.status_code == 416
        assert response.json()["code"] == "range_not_satisfiable"

    def test_head_counts_nothing(self, client, remote_clip):
        response = client.head(reverse("clip-stream", args=[remote_clip.pk]))
        assert response.status_code == 200
        assert response["Content-Length"] == str(len(AUDIO_BYTES))
        assert clip_stats(clip=remote_clip).play_count == 0

    def test_origin_error_is_502_json_and_counts_nothing(self, client, httpserver):
        httpserver.expect_request("/gone.wav").respond_with_data("gone", status=500)
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/gone.wav"))
        response = stream(client, clip)
        assert response.status_code == 502
        assert response.json()["code"] == "origin_error"
        assert clip_stats(clip=clip).play_count == 0

    def test_unreachable_origin_is_502_json(self, client):
        with socket.socket() as unused:  # a port nobody listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        clip = RemoteClipFactory(audio_url=f"http://127.0.0.1:{port}/clip.wav")
        response = stream(client, clip)
        assert response.status_code == 502
        assert response.json()["code"] == "origin_unreachable"

    def test_origin_html_is_not_relayed_as_html(self, client, httpserver):
        httpserver.expect_request("/page").respond_with_data(
            "<script>alert(1)</script>", content_type="text/html"
        )
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/page"))
        response = stream(client, clip)
        assert response["Content-Type"] == "application/octet-stream"


NEW_AUDIO = bytes(reversed(AUDIO_BYTES))


def _changed_origin_handler(request):
    """The origin's file has changed (ETag "v2"); it honours Range, not If-Range."""
    headers = {"ETag": '"v2"', "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
    header = request.headers.get("Range", "")
    if header.startswith("bytes=") and header.endswith("-"):
        start = int(header[6:-1])
        headers["Content-Range"] = f"bytes {start}-{len(NEW_AUDIO) - 1}/10000"
        return Response(NEW_AUDIO[start:], 206, headers, content_type="audio/wav")
    return Response(NEW_AUDIO, 200, headers, content_type="audio/wav")


def _revalidating_origin_handler(request):
    """An origin that answers conditional requests itself."""
    if request.headers.get("If-None-Match") == '"v1"':
        return Response(status=304, headers={"ETag": '"v1"'})
    if request.headers.get("If-Match", '"v1"') != '"v1"':
        return Response(status=412)
    return Response(AUDIO_BYTES, content_type="audio/wav", headers={"ETag": '"v1"'})


@pytest.mark.django_db
class TestRemotePreconditions:
    def test_a_stale_if_range_gets_the_whole_new_file_not_a_splice(
        self, client, httpserver
    ):
        httpserver.expect_request("/clip.wav").respond_with_handler(
            _changed_origin_handler
        )
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/clip.wav"))
        response = stream(client, clip, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE='"v1"')
        assert response.status_code == 200
        assert response["ETag"] == '"v2"'
        assert b"".join(response.streaming_content) == NEW_AUDIO

    def test_a_current_if_range_gets_the_range(self, client, httpserver):
        httpserver.expect_request("/clip.wav").respond_with_handler(
            _changed_origin_handler
        )
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/clip.wav"))
        response = stream(client, clip, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE='"v2"')
        assert response.status_code == 206
        assert b"".join(response.streaming_content) == NEW_AUDIO[100:]

    def test_a_current_etag_is_304_even_if_the_origin_ignores_it(
        self, client, remote_clip
    ):
        response = stream(client, remote_clip, HTTP_IF_NONE_MATCH='"v1"')
        assert response.status_code == 304
        assert response["ETag"] == '"v1"'
        assert "Content-Length" not in response
        assert clip_stats(clip=remote_clip).play_count == 0

    def test_an_origin_that_revalidates_is_asked(self, client, httpserver):
        httpserver.expect_request("/clip.wav").respond_with_handler(
            _revalidating_origin_handler
        )
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/clip.wav"))
        assert stream(client, clip, HTTP_IF_NONE_MATCH='"v1"').status_code == 304
        forwarded = httpserver.log[-1][0].headers
        assert forwarded["If-None-Match"] == '"v1"'
        response = stream(client, clip, HTTP_IF_MATCH='"v0"')
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed"
        assert clip_stats(clip=clip).play_count == 0

    def test_if_match_fails_even_if_the_origin_ignores_it(self, client, remote_clip):
        response = stream(client, remote_clip, HTTP_IF_MATCH='"v0"')
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed"
        assert clip_stats(clip=remote_clip).play_count == 0
