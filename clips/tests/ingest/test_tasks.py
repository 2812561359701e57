"""The ingest as curators and listeners meet it: API, stream, waveform, retries.

Tasks run eagerly here (no broker), on commit: each test runs the commit hooks.
"""

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from clips import services, tasks
from clips.ingest import pipeline
from clips.models import Clip, ClipStatus, Rendition, RenditionName
from clips.tests.audio import decoded, tone
from clips.tests.factories import ClipFactory, RemoteClipFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"


@pytest.fixture
def upload(curator_client, django_capture_on_commit_callbacks):
    """POST an audio file as a curator; the ingest runs as the request commits."""

    def post(name: str, data: bytes, *, duration: float = 2.0) -> dict:
        payload = {
            "title": name,
            "genre": "ambient",
            "duration": duration,
            "audio_file": SimpleUploadedFile(name, data),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = curator_client.post(LIST_URL, payload)
        assert response.status_code == 201, response.json()
        return curator_client.get(response["Location"]).json()

    return post


def test_an_upload_is_probed_and_ready(upload):
    clip = upload("take.flac", tone("flac", seconds=2.5), duration=2.0)
    assert clip["status"] == "ready"
    assert clip["failure_reason"] == ""
    assert clip["duration"] == pytest.approx(2.5, abs=0.01)
    assert clip["duration_corrected_from"] is None  # within 1 s of the curator's
    assert (clip["codec"], clip["sample_rate"], clip["channels"]) == ("flac", 44100, 2)
    assert clip["content_type"] == "audio/flac"
    assert clip["bit_rate"] > 0


def test_a_wrong_duration_is_replaced_and_the_api_says_so(upload):
    clip = upload("take.wav", tone("wav", seconds=2), duration=3600)
    assert clip["duration"] == pytest.approx(2.0, abs=0.01)
    assert clip["duration_corrected_from"] == 3600


def test_a_wav_named_mp3_is_served_as_wav(upload, client):
    clip = upload("evil.mp3", tone("wav"))
    assert clip["content_type"] == "audio/wav"
    original = client.get(clip["stream_url"] + "?format=original")
    assert original["Content-Type"] == "audio/wav"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("fake.wav", b"this is not audio\n"),
        ("cut.mp3", tone("mp3", seconds=4)[:20_000]),
    ],
)
def test_what_is_not_audio_fails_with_a_reason_and_is_never_streamed(
    upload, client, curator_client, name, data
):
    clip = upload(name, data)
    assert clip["status"] == "failed"
    assert clip["failure_reason"]
    assert client.get(clip["stream_url"]).status_code == 404
    assert client.get(f"{LIST_URL}/{clip['id']}").status_code == 404
    refused = curator_client.get(clip["stream_url"])
    assert refused.status_code == 409
    assert refused.json() == {
        "code": "clip_failed",
        "detail": f"This clip's audio could not be read: {clip['failure_reason']}",
    }
    assert not Rendition.objects.filter(clip_id=clip["id"]).exists()


def test_an_empty_stored_file_fails():
    clip = ClipFactory(audio_file__data=b"", status=ClipStatus.PENDING)
    pipeline.clip_ingest(clip_id=clip.pk)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.FAILED
    assert clip.failure_reason.startswith("Not readable as audio")


def test_listeners_see_only_ready_clips_and_curators_filter_by_status(
    client, curator_client
):
    ready = ClipFactory()
    ClipFactory(status=ClipStatus.PENDING)
    failed = ClipFactory(status=ClipStatus.FAILED, failure_reason="Not audio.")
    listed = client.get(LIST_URL).json()["results"]
    assert [row["id"] for row in listed] == [ready.pk]
    assert client.get("/").content.count(b'class="clip"') == 1
    everything = curator_client.get(LIST_URL).json()["results"]
    assert len(everything) == 3
    only_failed = curator_client.get(LIST_URL, {"status": "failed"}).json()["results"]
    assert [row["id"] for row in only_failed] == [failed.pk]


def test_a_pending_clip_is_hidden_from_listeners_everywhere(client):
    clip = ClipFactory(status=ClipStatus.PENDING)
    for path in ("", "/stream", "/stats", "/waveform"):
        assert client.get(f"{LIST_URL}/{clip.pk}{path}").status_code == 404, path
    assert client.get(f"/clips/{clip.pk}/").status_code == 404


def test_the_stream_sends_the_preview_and_the_original_on_request(upload, client):
    clip = upload("take.wav", tone("wav", seconds=3))
    preview = client.get(clip["stream_url"])
    body = b"".join(preview.streaming_content)
    assert preview["Content-Type"] == "audio/mpeg"
    assert decoded(body)[0] == "mp3"
    original = client.get(clip["stream_url"], {"format": "original"})
    assert original["Content-Type"] == "audio/wav"
    assert len(b"".join(original.streaming_content)) == clip["size_bytes"]
    assert len(body) < clip["size_bytes"] / 5
    assert preview["ETag"] != original["ETag"]


def test_the_preview_answers_ranges_and_preconditions(upload, client):
    clip = upload("take.wav", tone("wav", seconds=3))
    etag = client.head(clip["stream_url"])["ETag"]
    part = client.get(clip["stream_url"], HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["ETag"] == etag
    assert len(b"".join(part.streaming_content)) == 100
    assert client.get(clip["stream_url"], HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_an_unknown_format_is_400_json(client):
    clip = ClipFactory()
    response = client.get(f"{LIST_URL}/{clip.pk}/stream", {"format": "flac"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_waveform_endpoint_gives_audiowaveform_json(upload, client):
    clip = upload("take.ogg", tone("ogg"))
    waveform = client.get(clip["waveform_url"]).json()
    assert waveform["version"] == 2
    assert waveform["sample_rate"] == 48_000
    assert len(waveform["data"]) == 2 * waveform["length"] == 1600


def test_the_waveform_is_read_from_storage_once(upload, client):
    """Named by its digest it never goes stale: kept in the shared cache, the
    clip page and the API do not ask the storage (a bucket GET) each time."""
    clip = upload("take.wav", tone("wav"))
    first = client.get(clip["waveform_url"]).json()
    rendition = Rendition.objects.get(clip_id=clip["id"], name=RenditionName.WAVEFORM)
    rendition.file.storage.delete(rendition.file.name)
    assert client.get(clip["waveform_url"]).json() == first
    assert client.get(f"/clips/{clip['id']}/").status_code == 200


def test_a_waveform_gone_from_storage_is_not_ready_not_a_500(upload, client):
    clip = upload("take.wav", tone("wav"))
    rendition = Rendition.objects.get(clip_id=clip["id"], name=RenditionName.WAVEFORM)
    rendition.file.storage.delete(rendition.file.name)
    response = client.get(clip["waveform_url"])
    assert response.status_code == 409
    assert response.json()["code"] == "waveform_not_ready"
    assert client.get(f"/clips/{clip['id']}/").status_code == 200


def test_a_clip_not_ingested_has_no_waveform_yet(client):
    response = client.get(f"{LIST_URL}/{ClipFactory().pk}/waveform")
    assert response.status_code == 409
    assert response.json()["code"] == "waveform_not_ready"


def test_ingesting_again_changes_nothing(upload, media_root):
    clip = upload("take.mp3", tone("mp3"))
    before = list(Rendition.objects.values_list("name", "file", "digest"))
    files = sorted(media_root.rglob("*"))
    pipeline.clip_ingest(clip_id=clip["id"])
    assert list(Rendition.objects.values_list("name", "file", "digest")) == before
    assert sorted(media_root.rglob("*")) == files


def test_new_audio_drops_the_old_renditions_and_is_ingested_again(
    upload, django_capture_on_commit_callbacks
):
    clip = Clip.objects.get(pk=upload("take.wav", tone("wav"))["id"])
    clip.audio_file = SimpleUploadedFile("new.flac", tone("flac", seconds=4))
    with django_capture_on_commit_callbacks(execute=True):
        services.clip_save(clip=clip)
    clip.refresh_from_db()
    assert (clip.status, clip.codec, clip.duration) == ("ready", "flac", 4.0)
    preview = Rendition.objects.get(clip=clip, name=RenditionName.PREVIEW)
    assert decoded(preview.file.read())[1] == pytest.approx(4, abs=0.06)


def test_an_edit_that_keeps_the_audio_keeps_its_status(
    upload, django_capture_on_commit_callbacks
):
    clip = Clip.objects.get(pk=upload("take.wav", tone("wav"))["id"])
    ingested_at = clip.ingested_at
    clip.title = "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        services.clip_save(clip=clip)
    clip.refresh_from_db()
    assert clip.ingested_at == ingested_at  # not ingested again
    assert clip.status == ClipStatus.READY
    assert clip.renditions.count() == 3  # MP3 and Opus previews, waveform


def test_a_form_opened_before_the_ingest_finished_does_not_undo_it():
    clip = ClipFactory(
        audio_file__data=tone("wav"), status=ClipStatus.PENDING, duration=60
    )
    stale = Clip.objects.get(pk=clip.pk)
    pipeline.clip_ingest(clip_id=clip.pk)
    stale.title = "Renamed"
    stale.duration = 45  # the curator's figure again: the measured one stays
    services.clip_save(clip=stale)
    clip.refresh_from_db()
    assert clip.title == "Renamed"
    assert (clip.status, clip.codec, clip.duration) == ("ready", "pcm_s16le", 2.0)
    assert clip.duration_corrected_from == 60
    assert clip.renditions.count() == 3  # MP3 and Opus previews, waveform


def test_a_clip_deleted_before_its_ingest_is_skipped():
    clip = ClipFactory(status=ClipStatus.PENDING)
    clip_id = clip.pk
    clip.delete()
    assert pipeline.clip_ingest(clip_id=clip_id) is None


class TestRemote:
    @pytest.fixture(autouse=True)
    def loopback_origins_allowed(self, settings):
        settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
        # The API takes audio URLs with a host name only: the test origin's.
        settings.CLIPS_ORIGIN_ALLOWED_HOSTS = ["localhost"]

    def test_a_remote_clip_is_fetched_once_then_streamed_from_storage(
        self, httpserver, client
    ):
        audio = tone("mp3", seconds=3)
        httpserver.expect_oneshot_request("/a.mp3").respond_with_data(
            audio, content_type="text/html"
        )
        clip = RemoteClipFactory(
            audio_url=httpserver.url_for("/a.mp3"), status=ClipStatus.PENDING
        )
        tasks.clip_ingest.delay(clip.pk)
        clip.refresh_from_db()
        assert (clip.status, clip.content_type, clip.size_bytes) == (
            "ready",
            "audio/mpeg",
            len(audio),
        )
        original = client.get(f"{LIST_URL}/{clip.pk}/stream?format=original")
        assert b"".join(original.streaming_content) == audio
        assert original["Content-Type"] == "audio/mpeg"
        preview = client.get(f"{LIST_URL}/{clip.pk}/stream")
        assert preview["Content-Type"] == "audio/mpeg"
        assert len(httpserver.log) == 1  # both from storage

    def test_a_clip_added_by_url_through_the_api_is_ingested_on_commit(
        self, httpserver, curator_client, django_capture_on_commit_callbacks
    ):
        httpserver.expect_request("/take.flac").respond_with_data(tone("flac"))
        payload = {
            "title": "By URL",
            "genre": "jazz",
            "duration": 2,
            "audio_url": httpserver.url_for("/take.flac"),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = curator_client.post(
                LIST_URL, payload, content_type="application/json"
            )
        assert response.status_code == 201
        clip = Clip.objects.get(pk=response.json()["id"])
        assert (clip.status, clip.codec, clip.content_type) == (
            "ready",
            "flac",
            "audio/flac",
        )
        original = clip.renditions.get(name=RenditionName.ORIGINAL)
        assert original.file.name.endswith(".flac")

    def test_an_origin_that_refuses_fails_the_clip(self, httpserver):
        httpserver.expect_request("/gone.mp3").respond_with_data("no", status=404)
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/gone.mp3"))
        tasks.clip_ingest.delay(clip.pk)
        clip.refresh_from_db()
        assert clip.status == ClipStatus.FAILED
        assert clip.failure_reason == "The audio origin answered HTTP 404."

    def test_an_origin_down_is_retried_then_the_clip_fails(self, monkeypatch):
        calls = []

        def unreachable(*args, **kwargs):
            calls.append(args)
            raise requests.ConnectionError("connection refused")

        monkeypatch.setattr(pipeline, "origin_open", unreachable)
        clip = RemoteClipFactory(status=ClipStatus.PENDING)
        tasks.clip_ingest.delay(clip.pk)
        clip.refresh_from_db()
        assert len(calls) == tasks.MAX_RETRIES + 1
        assert clip.status == ClipStatus.FAILED
        assert clip.failure_reason.startswith("Gave up after 6 tries: ")

    def test_an_origin_back_on_a_retry_makes_the_clip_ready(
        self, monkeypatch, httpserver
    ):
        httpserver.expect_request("/a.wav").respond_with_data(tone("wav"))
        real_open = pipeline.origin_open
        attempts = iter([requests.Timeout("slow"), None])

        def flaky(*args, **kwargs):
            if error := next(attempts, None):
                raise error
            return real_open(*args, **kwargs)

        monkeypatch.setattr(pipeline, "origin_open", flaky)
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/a.wav"))
        tasks.clip_ingest.delay(clip.pk)
        clip.refresh_from_db()
        assert clip.status == ClipStatus.READY


def test_an_anonymous_client_gets_no_failure_details(client):
    clip = ClipFactory(status=ClipStatus.FAILED, failure_reason="secret path /x")
    assert b"secret" not in Client().get(f"{LIST_URL}/{clip.pk}").content
