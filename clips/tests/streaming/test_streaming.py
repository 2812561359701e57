import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clips import services
from clips.selectors import clip_stats
from clips.streaming.ranges import ByteRange, RangeNotSatisfiable, parse_range
from clips.tests.factories import AUDIO_BYTES, ClipFactory, stream_url

SIZE = len(AUDIO_BYTES)


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
class TestHttpEdgeCases:
    """Answers checked against nginx serving the same file."""

    def test_304_has_no_content_length(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        response = client.get(stream_url(clip), HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 304
        assert "Content-Length" not in response
        assert "Content-Type" not in response
        assert response["ETag"] == etag
        assert body(response) == b""

    def test_a_matching_etag_wins_over_an_unsatisfiable_range(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        response = client.get(
            stream_url(clip), HTTP_IF_NONE_MATCH=etag, HTTP_RANGE="bytes=99999-"
        )
        assert response.status_code == 304

    @pytest.mark.parametrize(
        "precondition",
        [
            {"HTTP_IF_MATCH": '"not-this-one"'},
            {"HTTP_IF_UNMODIFIED_SINCE": "Mon, 01 Jan 2001 00:00:00 GMT"},
        ],
    )
    def test_a_failed_precondition_is_412_json(self, client, precondition):
        clip = ClipFactory()
        response = client.get(stream_url(clip), **precondition)
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed"

    def test_a_matching_if_match_streams(self, client):
        clip = ClipFactory()
        etag = client.head(stream_url(clip))["ETag"]
        response = client.get(stream_url(clip), HTTP_IF_MATCH=etag)
        assert response.status_code == 200

    @pytest.mark.parametrize("unit", ["Bytes", "BYTES", "bYtEs"])
    def test_range_units_are_case_insensitive(self, client, unit):
        clip = ClipFactory()
        response = client.get(stream_url(clip), HTTP_RANGE=f"{unit}=0-99")
        assert response.status_code == 206
        assert body(response) == AUDIO_BYTES[:100]

    def test_files_of_one_size_and_time_have_their_own_etags(self, client):
        first = ClipFactory(audio_file__data=b"a" * 1000)
        second = ClipFactory(audio_file__data=b"b" * 1000)
        storage = first.audio_file.storage
        mtime = storage.path(first.audio_file.name)
        os.utime(
            storage.path(second.audio_file.name), ns=(0, os.stat(mtime).st_mtime_ns)
        )
        tags = {client.head(stream_url(clip))["ETag"] for clip in (first, second)}
        assert len(tags) == 2

    def test_the_etag_changes_with_the_content(self, curator_client):
        # A curator: the new audio is pending its ingest, which listeners wait for.
        clip = ClipFactory(audio_file__data=b"a" * 1000)
        before = curator_client.head(stream_url(clip))["ETag"]
        clip.audio_file = SimpleUploadedFile("clip.wav", b"b" * 1000)
        services.clip_save(clip=clip)
        assert curator_client.head(stream_url(clip))["ETag"] != before
