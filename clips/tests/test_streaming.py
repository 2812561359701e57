import os

import pytest
from django.urls import reverse

from clips.selectors import clip_stats
from clips.streaming import ByteRange, RangeNotSatisfiable, parse_range
from clips.tests.factories import AUDIO_BYTES, ClipFactory

SIZE = len(AUDIO_BYTES)


def stream_url(clip) -> str:
    return reverse("clip-stream", args=[clip.pk])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def plays(clip) -> int:
    return clip_stats(clip=clip).play_count


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 9999)),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-199", ByteRange(100, 199)),
        ("bytes=-500", ByteRange(9500, 9999)),
        ("bytes=-20000", ByteRange(0, 9999)),
        ("bytes=9990-20000", ByteRange(9990, 9999)),
        ("bytes=0000000000000000000000000000005-9", ByteRange(5, 9)),
        ("bytes=100-50", None),
        ("bytes=0-10,20-30", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("items=0-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    ["bytes=10000-", "bytes=10000-10005", "bytes=-0", "bytes=99999999999999999999-"],
)
def test_parse_range_beyond_the_end_is_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


@pytest.mark.django_db
class TestStreamFile:
    def test_full_get_sends_the_file_with_its_headers(self, client):
        clip = ClipFactory()
        response = client.get(stream_url(clip))
        assert response.status_code == 200
        assert body(response) == AUDIO_BYTES
        assert response["Content-Type"] == "audio/wav"
        assert response["Content-Length"] == str(SIZE)
        assert response["Accept-Ranges"] == "bytes"
        assert response["ETag"].startswith('"')
        assert "Last-Modified" in response

    @pytest.mark.parametrize(
        ("header", "start", "end"),
        [
            ("bytes=0-", 0, 9999),
            ("bytes=0-99", 0, 99),
            ("bytes=-500", 9500, 9999),
            ("bytes=4000-4999", 4000, 4999),
            ("bytes=9990-20000", 9990, 9999),
        ],
    )
    def test_single_range_is_206_with_exactly_those_bytes(
        self, client, header, start, end
    ):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_RANGE=header)
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
        assert response["Content-Length"] == str(end - start + 1)
        assert body(response) == AUDIO_BYTES[start : end + 1]

    @pytest.mark.parametrize(
        "header", ["bytes=100-50", "bytes=0-10,20-30", "bytes=abc", "pages=1-2"]
    )
    def test_malformed_or_multiple_ranges_are_ignored(self, client, header):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_RANGE=header)
        assert response.status_code == 200
        assert body(response) == AUDIO_BYTES

    def test_range_beyond_eof_is_416_json(self, client):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_RANGE="bytes=10000-")
        assert response.status_code == 416
        assert response["Content-Range"] == f"bytes */{SIZE}"
        assert response.json()["code"] == "range_not_satisfiable"
        assert plays(clip) == 0

    def test_large_file_is_streamed_in_chunks_not_read_whole(self, client):
        clip = ClipFactory(audio_file__data=os.urandom(1_000_000))
        response = client.get(stream_url(clip))
        chunks = list(response.streaming_content)
        assert response.streaming
        assert len(chunks) > 1
        assert max(len(chunk) for chunk in chunks) <= response.block_size
        assert sum(len(chunk) for chunk in chunks) == 1_000_000

    def test_head_sends_headers_without_body_or_play(self, client):
        clip = ClipFactory()
        response = client.head(stream_url(clip))
        assert response.status_code == 200
        assert response["Content-Length"] == str(SIZE)
        assert response["Content-Type"] == "audio/wav"
        assert response.content == b""
        assert plays(clip) == 0

    def test_head_with_range_describes_the_partial_response(self, client):
        clip = ClipFactory()
        response = client.head(stream_url(clip), HTTP_RANGE="bytes=0-99")
        assert response.status_code == 206
        assert response["Content-Range"] == f"bytes 0-99/{SIZE}"
        assert plays(clip) == 0

    def test_matching_etag_is_304_and_counts_nothing(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        response = client.get(stream_url(clip), HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304
        assert response["ETag"] == etag
        assert plays(clip) == 0

    def test_stale_if_range_gets_the_whole_file(self, client):
        clip = ClipFactory()
        response = client.get(
            stream_url(clip), HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE='"stale"'
        )
        assert response.status_code == 200
        assert body(response) == AUDIO_BYTES

    def test_current_if_range_gets_the_range(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        response = client.get(
            stream_url(clip), HTTP_RANGE="bytes=100-199", HTTP_IF_RANGE=etag
        )
        assert response.status_code == 206
        assert body(response) == AUDIO_BYTES[100:200]

    def test_unknown_clip_is_404_json(self, client):
        response = client.get("/api/v1/clips/987654/stream")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_huge_clip_id_is_404_json(self, client):
        response = client.get(f"/api/v1/clips/{10**30}/stream")
        assert response.status_code == 404

    def test_missing_audio_file_is_404_json(self, client):
        clip = ClipFactory()
        clip.audio_file.storage.delete(clip.audio_file.name)
        response = client.get(stream_url(clip))
        assert response.status_code == 404
        assert response.json()["code"] == "audio_missing"

    def test_post_is_not_allowed(self, client):
        response = client.post(stream_url(ClipFactory()))
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"


@pytest.mark.django_db
class TestPlayCounting:
    def test_get_without_range_counts_a_play(self, client):
        clip = ClipFactory()
        body(client.get(stream_url(clip)))
        assert plays(clip) == 1

    def test_range_from_byte_zero_counts_a_play(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-")
        assert plays(clip) == 1

    def test_seek_chunk_does_not_count_a_play(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-")
        client.get(stream_url(clip), HTTP_RANGE="bytes=5000-")
        client.get(stream_url(clip), HTTP_RANGE="bytes=-500")
        assert plays(clip) == 1

    def test_safari_probe_of_two_bytes_does_not_count(self, client):
        clip = ClipFactory()
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-1")
        assert plays(clip) == 0
        client.get(stream_url(clip), HTTP_RANGE="bytes=0-")
        assert plays(clip) == 1

    def test_every_new_listen_counts(self, client):
        clip = ClipFactory()
        for _ in range(3):
            client.get(stream_url(clip))
        stats = clip_stats(clip=clip)
        assert stats.play_count == 3
        assert stats.plays_per_day[-1].plays == 3
        assert stats.last_played_at is not None
