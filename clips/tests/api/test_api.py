import datetime
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from clips.models import Clip, Genre
from clips.plays import play_record
from clips.tests.factories import (
    AUDIO_BYTES,
    LARGE_AUDIO_BYTES,
    ClipFactory,
    PlayFactory,
)

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"
# Unicode's bidirectional formatting characters (Bidi_Control): invisible, they
# make a name read otherwise than it is ("Invoice\u202egnp.mp3" shows as
# "Invoice3pm.png").
BIDI_CONTROLS = [
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]


def detail_url(clip) -> str:
    return f"/api/v1/clips/{clip.pk}"


def valid_payload(**overrides) -> dict:
    return {
        "title": "Harbour Bells",
        "description": "Bells over water.",
        "genre": "ambient",
        "duration": 12.5,
        "audio_url": "https://audio.example.com/bells.mp3",
    } | overrides


class TestList:
    def test_list_is_paginated_with_metadata(self, client):
        ClipFactory.create_batch(25)
        page1 = client.get(LIST_URL).json()
        assert page1["count"] == 25
        assert len(page1["results"]) == 20
        assert (page1["count_estimated"], page1["previous"]) == (False, None)
        page2 = client.get(LIST_URL, {"page": 2}).json()
        assert len(page2["results"]) == 5
        # next carries a cursor to the same clips as the numbered page
        assert "?cursor=" in page1["next"]
        assert client.get(page1["next"]).json()["results"] == page2["results"]
        first = page1["results"][0]
        assert set(first) >= {
            "id",
            "title",
            "genre",
            "duration",
            "play_count",
            "stream_url",
            "stats_url",
        }
        assert first["stream_url"].endswith(f"/api/v1/clips/{first['id']}/stream")

    def test_page_size_is_at_most_100(self, client):
        ClipFactory.create_batch(3)
        response = client.get(LIST_URL, {"page_size": 1})
        assert len(response.json()["results"]) == 1
        assert client.get(LIST_URL, {"page_size": 100}).status_code == 200
        for too_many in (101, 10_000):
            response = client.get(LIST_URL, {"page_size": too_many})
            assert response.status_code == 400
            assert "page_size" in response.json()["fields"]

    @pytest.mark.parametrize("page", ["999", str(10**20)])
    def test_page_past_the_last_is_404_json(self, client, page):
        ClipFactory()
        response = client.get(LIST_URL, {"page": page})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize(
        "query",
        [
            "page=0",
            "page=-1",
            "page=abc",
            "page=",
            "page=1.0",
            "page=last",
            "page=null",
            "page=1&page=2",
            "page_size=0",
            "page_size=",
            "page_size=false",
            "page_size=10&page_size=20",
            "duration_min=-1",
            "duration_max=3601",
            "duration_max=1e51",
            "duration_max=nan",
            "duration_max=",
            "duration_max=1_0",
            "genre=",
            "genre=jazz&genre=rock",
            "status=",
            "status=lost",
            "status=ready&status=failed",
            "search=a&search=b",
            "search=%00",
            "ordering=",
            "ordering=title,",
            "ordering=-title&ordering=title",
        ],
    )
    def test_a_query_the_schema_forbids_is_400_with_field_error(self, client, query):
        response = client.get(f"{LIST_URL}?{query}")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert set(body["fields"]) == {query.split("=")[0]}

    def test_filter_by_genre(self, client):
        ClipFactory(genre=Genre.JAZZ, title="Blue")
        ClipFactory(genre=Genre.AMBIENT)
        results = client.get(LIST_URL, {"genre": "jazz"}).json()["results"]
        assert [clip["title"] for clip in results] == ["Blue"]

    def test_unknown_genre_filter_is_400_with_field_error(self, client):
        response = client.get(LIST_URL, {"genre": "polka"})
        assert response.status_code == 400
        assert "genre" in response.json()["fields"]

    def test_filter_by_duration(self, client):
        ClipFactory(duration=5, title="short")
        ClipFactory(duration=50, title="long")
        results = client.get(LIST_URL, {"duration_min": 10}).json()["results"]
        assert [clip["title"] for clip in results] == ["long"]

    def test_search_matches_title_and_description(self, client):
        ClipFactory(title="Rain on tin", description="")
        ClipFactory(title="Other", description="heavy rain at night")
        ClipFactory(title="Sunny", description="birds")
        results = client.get(LIST_URL, {"search": "RAIN"}).json()["results"]
        assert {clip["title"] for clip in results} == {"Rain on tin", "Other"}

    def test_a_search_of_200_characters_is_answered_and_a_longer_one_is_400(
        self, client
    ):
        ClipFactory()
        response = client.get(LIST_URL, {"search": "a " * 100})
        assert response.status_code == 200
        response = client.get(LIST_URL, {"search": "a " * 100 + "b"})
        assert response.status_code == 400
        assert "search" in response.json()["fields"]

    def test_ordering_by_play_count(self, client):
        quiet = ClipFactory(title="quiet")
        loud = ClipFactory(play_count=9)
        middle = ClipFactory(play_count=3)
        results = client.get(LIST_URL, {"ordering": "-play_count"}).json()["results"]
        assert [c["id"] for c in results] == [loud.pk, middle.pk, quiet.pk]
        assert [c["play_count"] for c in results] == [9, 3, 0]

    def test_ordering_by_duration(self, client):
        ClipFactory(duration=50, title="long")
        ClipFactory(duration=5, title="short")
        results = client.get(LIST_URL, {"ordering": "duration"}).json()["results"]
        assert [(c["title"], c["duration"]) for c in results] == [
            ("short", 5.0),
            ("long", 50.0),
        ]

    def test_ordering_by_several_keys(self, client):
        ClipFactory(duration=5, title="b")
        ClipFactory(duration=5, title="a")
        ClipFactory(duration=9, title="c")
        query = {"ordering": "-duration,title"}
        results = client.get(LIST_URL, query).json()["results"]
        assert [c["title"] for c in results] == ["c", "a", "b"]

    @pytest.mark.parametrize("ordering", ["password", "title,password", "Title"])
    def test_unknown_ordering_is_400(self, client, ordering):
        response = client.get(LIST_URL, {"ordering": ordering})
        assert response.status_code == 400
        assert "ordering" in response.json()["fields"]


class TestDetail:
    def test_detail_returns_metadata(self, client):
        clip = ClipFactory(title="Dawn", genre=Genre.ACOUSTIC)
        Clip.objects.filter(pk=clip.pk).update(play_count=4)
        data = client.get(detail_url(clip)).json()
        assert data["title"] == "Dawn"
        assert data["genre"] == "acoustic"
        assert data["play_count"] == 4
        assert data["source"] == "file"
        assert data["content_type"] == "audio/wav"
        assert data["size_bytes"] == len(AUDIO_BYTES)

    @pytest.mark.parametrize("clip_id", ["424242", "abc", str(10**30)])
    def test_unknown_clip_is_404_json(self, client, clip_id):
        response = client.get(f"/api/v1/clips/{clip_id}")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "Not found."}

    @pytest.mark.parametrize("spelling", ["{}%0D", "%20{}", "{}%20", "+{}"])
    @pytest.mark.parametrize("suffix", ["", "/stats"])
    def test_an_id_that_is_not_plain_digits_is_404(self, client, spelling, suffix):
        clip_id = spelling.format(ClipFactory().pk)
        response = client.get(f"/api/v1/clips/{clip_id}{suffix}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_unknown_api_path_is_404_json(self, client):
        response = client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


# The request body of POST /api/v1/clips in the service description, byte for byte.
DESCRIPTION_BODY = b"""{
  "title": "New Clip",
  "description": "A description for the new clip",
  "genre": "electronic",
  "duration": 30.5,
  "audio_url": "https://example.com/path/to/audio.mp3"
}"""


class TestCreate:
    @pytest.fixture
    def client(self, curator_client):
        """Adding clips is for curators; test_auth.py covers everyone else."""
        return curator_client

    def test_the_service_descriptions_body_creates_a_clip(self, client):
        response = client.post(
            LIST_URL, DESCRIPTION_BODY, content_type="application/json"
        )
        assert response.status_code == 201, response.json()
        data = response.json()
        assert data["duration"] == 30.5
        assert {key: data[key] for key in ("title", "description", "genre")} == {
            "title": "New Clip",
            "description": "A description for the new clip",
            "genre": "electronic",
        }
        assert data["audio_url"] == "https://example.com/path/to/audio.mp3"
        created = client.get(response["Location"]).json()
        assert created["duration"] == 30.5
        assert created["id"] == data["id"]

    def test_create_clip_with_audio_url(self, client):
        response = client.post(
            LIST_URL, valid_payload(), content_type="application/json"
        )
        assert response.status_code == 201
        data = response.json()
        assert data["title"] == "Harbour Bells"
        assert data["source"] == "url"
        assert data["play_count"] == 0
        assert response["Location"].endswith(f"/api/v1/clips/{data['id']}")
        assert Clip.objects.get(pk=data["id"]).audio_url.endswith("bells.mp3")

    def test_create_clip_with_uploaded_file(self, client):
        upload = SimpleUploadedFile("song.mp3", AUDIO_BYTES, content_type="audio/mpeg")
        payload = valid_payload(audio_url="", audio_file=upload)
        response = client.post(LIST_URL, payload)
        assert response.status_code == 201, response.json()
        data = response.json()
        assert data["content_type"] == "audio/mpeg"
        assert data["size_bytes"] == len(AUDIO_BYTES)
        streamed = client.get(data["stream_url"])
        assert b"".join(streamed.streaming_content) == AUDIO_BYTES

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"title": ""}, "title"),
            ({"title": "x" * 201}, "title"),
            ({"duration": 0}, "duration"),
            ({"duration": -3}, "duration"),
            ({"duration": 3601}, "duration"),
            ({"duration": "NaN"}, "duration"),
            ({"duration": "soon"}, "duration"),
            ({"genre": "polka"}, "genre"),
            ({"audio_url": "ftp://audio.example.com/a.mp3"}, "audio_url"),
            ({"audio_url": "javascript:alert(1)"}, "audio_url"),
            ({"audio_url": "not a url"}, "audio_url"),
            # JSON values of another type than the schema's are not converted.
            ({"title": 5}, "title"),
            ({"duration": True}, "duration"),
            ({"duration": "30.5"}, "duration"),
            # Audio URLs name a public host: no address literal, no spaces.
            ({"audio_url": "http://93.184.216.34/a.mp3"}, "audio_url"),
            ({"audio_url": "https://audio.example.com/a b.mp3"}, "audio_url"),
        ],
    )
    def test_bad_input_is_400_with_field_errors(self, client, overrides, field):
        payload = valid_payload(**overrides)
        response = client.post(LIST_URL, payload, content_type="application/json")
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert field in body["fields"]
        assert not Clip.objects.exists()

    @pytest.mark.parametrize("field", ["title", "description"])
    @pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
    def test_a_bidi_control_in_a_text_field_is_400_naming_it(
        self, client, field, control
    ):
        payload = valid_payload(**{field: f"Invoice{control}gnp.mp3"})
        response = client.post(LIST_URL, payload, content_type="application/json")
        assert response.status_code == 400
        (message,) = response.json()["fields"][field]
        assert f"U+{ord(control):04X}" in message
        assert not Clip.objects.exists()

    def test_right_to_left_text_without_controls_is_taken(self, client):
        text = "\u0645\u0637\u0631 \u05d2\u05e9\u05dd rain"  # Arabic, Hebrew, Latin
        payload = valid_payload(title=text, description=text)
        response = client.post(LIST_URL, payload, content_type="application/json")
        assert response.status_code == 201, response.json()
        assert response.json()["title"] == text

    def test_an_uploads_title_with_a_bidi_control_is_400(self, client):
        upload = SimpleUploadedFile("song.mp3", AUDIO_BYTES, content_type="audio/mpeg")
        payload = valid_payload(title="Invoice\u202egnp.mp3", audio_url="")
        response = client.post(LIST_URL, payload | {"audio_file": upload})
        assert response.status_code == 400
        assert "title" in response.json()["fields"]

    def test_missing_title_is_400(self, client):
        payload = valid_payload()
        del payload["title"]
        response = client.post(LIST_URL, payload, content_type="application/json")
        assert response.status_code == 400
        assert "title" in response.json()["fields"]

    def test_clip_needs_exactly_one_audio_source(self, client):
        response = client.post(
            LIST_URL, valid_payload(audio_url=""), content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["fields"]["non_field_errors"] == [
            "Give an audio_url, or upload an audio_file as multipart."
        ]

    def test_a_form_carries_numbers_as_text(self, client):
        response = client.post(
            LIST_URL,
            urlencode(valid_payload()),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["duration"] == 12.5

    def test_a_form_field_given_twice_is_400(self, client):
        body = urlencode(valid_payload()) + "&title=Again"
        response = client.post(
            LIST_URL, body, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 400
        assert response.json()["fields"] == {"title": ["Give this only once."]}

    def test_multipart_is_for_uploads(self, client):
        response = client.post(LIST_URL, valid_payload())
        assert response.status_code == 400
        assert "audio_file" in response.json()["fields"]

    @pytest.mark.parametrize(
        ("name", "content_type"),
        [("blob", "audio/ogg"), ("recording.png", "audio/ogg")],
    )
    def test_an_uploads_audio_content_type_names_its_format(
        self, client, name, content_type
    ):
        upload = SimpleUploadedFile(name, AUDIO_BYTES, content_type=content_type)
        response = client.post(LIST_URL, valid_payload(audio_url="", audio_file=upload))
        assert response.status_code == 201, response.json()
        assert response.json()["content_type"] == content_type

    def test_audio_urls_are_limited_to_the_allowed_hosts(self, client, settings):
        settings.CLIPS_ORIGIN_ALLOWED_HOSTS = [".cdn.example.com"]
        allowed = valid_payload(audio_url="https://eu.cdn.example.com/a.mp3")
        other = valid_payload(audio_url="https://example.org/a.mp3")
        for payload, status in ((allowed, 201), (other, 400)):
            response = client.post(LIST_URL, payload, content_type="application/json")
            assert response.status_code == status

    def test_file_and_url_together_are_rejected(self, client):
        upload = SimpleUploadedFile("song.mp3", AUDIO_BYTES)
        response = client.post(LIST_URL, valid_payload(audio_file=upload))
        assert response.status_code == 400
        assert "non_field_errors" in response.json()["fields"]

    def test_unsupported_file_type_is_rejected(self, client):
        upload = SimpleUploadedFile("run.exe", b"MZ")
        response = client.post(LIST_URL, valid_payload(audio_url="", audio_file=upload))
        assert response.status_code == 400
        assert "audio_file" in response.json()["fields"]

    def test_oversized_upload_is_rejected(self, client, settings):
        settings.CLIPS_MAX_UPLOAD_BYTES = 100
        upload = SimpleUploadedFile("big.wav", AUDIO_BYTES)
        response = client.post(LIST_URL, valid_payload(audio_url="", audio_file=upload))
        assert response.status_code == 400
        assert "audio_file" in response.json()["fields"]

    def large_upload(self) -> dict:
        upload = SimpleUploadedFile("take.wav", LARGE_AUDIO_BYTES, "audio/wav")
        return valid_payload(audio_url="", audio_file=upload)

    def test_an_upload_to_a_full_disk_is_507_storage_full(
        self, client, full_media_root
    ):
        response = client.post(LIST_URL, self.large_upload())
        assert response.status_code == 507
        assert response.json()["code"] == "storage_full"

    def test_an_upload_to_a_full_disk_leaves_no_file_and_no_clip(
        self, client, full_media_root
    ):
        client.post(LIST_URL, self.large_upload())
        assert not [path for path in full_media_root.rglob("*") if path.is_file()]
        assert not Clip.objects.exists()

    def test_an_upload_to_a_read_only_disk_is_503_with_retry_after(
        self, client, read_only_media_root
    ):
        response = client.post(LIST_URL, self.large_upload())
        assert response.status_code == 503
        assert response.json()["code"] == "storage_unavailable"
        assert int(response["Retry-After"]) > 0
        assert not Clip.objects.exists()

    def test_malformed_json_is_400_json(self, client):
        response = client.post(LIST_URL, "{nope", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["code"] == "parse_error"

    def test_json_nested_too_deeply_is_400_parse_error(self, client):
        body = "[" * 100_000
        response = client.post(LIST_URL, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json() == {
            "code": "parse_error",
            "detail": "JSON parse error - nested too deeply.",
        }


def test_unsupported_method_is_405_json(admin_client):
    response = admin_client.delete(detail_url(ClipFactory()))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


class TestStats:
    def test_stats_report_total_last_played_and_plays_per_day(self, client):
        clip = ClipFactory()
        now = timezone.now()
        Clip.objects.filter(pk=clip.pk).update(play_count=5, last_played_at=now)
        PlayFactory.create_batch(2, clip=clip, played_at=now)
        PlayFactory.create_batch(
            3, clip=clip, played_at=now - datetime.timedelta(days=2)
        )
        PlayFactory(clip=clip, played_at=now - datetime.timedelta(days=45))
        data = client.get(f"/api/v1/clips/{clip.pk}/stats").json()
        assert data["clip_id"] == clip.pk
        assert data["play_count"] == 5
        assert data["last_played_at"] is not None
        days = data["plays_per_day"]
        assert len(days) == 30
        assert days[-1] == {
            "date": now.date().isoformat(),
            "plays": 2,
            "listeners": 2,
        }
        assert data["listeners"] == 5  # the play 45 days ago is out of the window
        assert days[-3]["plays"] == 3
        assert sum(day["plays"] for day in days) == 5

    def test_stats_of_an_unplayed_clip_are_zero(self, client):
        data = client.get(f"/api/v1/clips/{ClipFactory().pk}/stats").json()
        assert data["play_count"] == 0
        assert data["last_played_at"] is None
        assert all(day["plays"] == 0 for day in data["plays_per_day"])

    def test_stats_of_unknown_clip_is_404_json(self, client):
        response = client.get("/api/v1/clips/999/stats")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


class TestDocs:
    def test_openapi_schema_describes_the_clip_endpoints(self, client):
        response = client.get("/api/v1/schema", {"format": "json"})
        assert response.status_code == 200
        paths = response.json()["paths"]
        assert {
            "/api/v1/clips",
            "/api/v1/clips/{id}",
            "/api/v1/clips/{id}/stats",
        } <= set(paths)

    def test_openapi_json_is_the_same_schema_as_json(self, client):
        response = client.get("/openapi.json")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
        versioned = client.get("/api/v1/schema", {"format": "json"}).json()
        assert response.json()["paths"] == versioned["paths"]

    @pytest.mark.parametrize(
        ("url", "schema_url"),
        [
            ("/docs", "/openapi.json"),
            ("/redoc", "/openapi.json"),
            ("/api/v1/docs", "/api/v1/schema"),
            ("/api/v1/redoc", "/api/v1/schema"),
        ],
    )
    def test_docs_load_their_schema_and_assets_locally(self, client, url, schema_url):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert schema_url in html
        assert "drf_spectacular_sidecar" in html
        assert "cdn.jsdelivr.net" not in html


@pytest.mark.parametrize(
    "params",
    [
        {"page_size": "-1"},
        {"page_size": "abc"},
        {"page_size": str(10**20)},
        {"ordering": "-nonsense,,title"},
        {"ordering": "play_count" * 500},
        {"search": "x" * 10_000},
        {"search": "\x00"},
        {"genre": "\x00"},
        {"duration_min": "1e400"},
        {"duration_max": "-inf"},
    ],
)
def test_odd_query_parameters_never_fail(client, params):
    ClipFactory()
    response = client.get(LIST_URL, params)
    assert response.status_code in (200, 400)
    assert response["Content-Type"] == "application/json"


def test_non_numeric_duration_filter_is_400_with_field_error(client):
    response = client.get(LIST_URL, {"duration_min": "long"})
    assert response.status_code == 400
    assert "duration_min" in response.json()["fields"]


class TestListCache:
    @pytest.fixture(autouse=True)
    def cache_on(self, settings):
        settings.CLIPS_LIST_CACHE_SECONDS = 60

    def test_anonymous_catalogue_pages_are_cached_briefly(self, client):
        clip = ClipFactory()
        assert client.get(LIST_URL).json()["results"][0]["play_count"] == 0
        play_record(clip=clip, listener="anon:test")
        assert client.get(LIST_URL).json()["results"][0]["play_count"] == 0
        assert client.get(f"{LIST_URL}/{clip.pk}/stats").json()["play_count"] == 1

    def test_anonymous_clip_answers_are_cached_briefly(self, client):
        clip = ClipFactory()
        assert client.get(f"{LIST_URL}/{clip.pk}").json()["play_count"] == 0
        play_record(clip=clip, listener="anon:test")
        assert client.get(f"{LIST_URL}/{clip.pk}").json()["play_count"] == 0

    def test_each_query_and_host_has_its_own_page(self, client, settings):
        settings.ALLOWED_HOSTS = ["testserver", "other.testserver"]
        ClipFactory(genre=Genre.JAZZ)
        assert client.get(LIST_URL, {"genre": "jazz"}).json()["count"] == 1
        assert client.get(LIST_URL, {"genre": "rock"}).json()["count"] == 0
        other = client.get(LIST_URL, {"genre": "jazz"}, HTTP_HOST="other.testserver")
        assert other.json()["results"][0]["stream_url"].startswith("http://other.")

    def test_errors_are_not_cached(self, client):
        assert client.get(LIST_URL, {"page": 2}).status_code == 404
        ClipFactory.create_batch(21)
        assert client.get(LIST_URL, {"page": 2}).status_code == 200

    def test_curators_always_see_the_live_catalogue(self, curator_client):
        clip = ClipFactory()
        curator_client.get(LIST_URL)
        play_record(clip=clip, listener="anon:test")
        assert curator_client.get(LIST_URL).json()["results"][0]["play_count"] == 1
