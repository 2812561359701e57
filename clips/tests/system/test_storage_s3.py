"""Audio in an S3 bucket: settings, uploads, ingest, streams and /readyz on a real
S3 API (moto's server), with the in-process app's STORAGES pointed at it.

nginx streaming from the bucket is test_edge.py's, on both storages.
"""

import hashlib
import importlib
import io
from collections.abc import Iterator

import pytest
import requests
from django.apps import apps as django_apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from clips.models import Clip, ClipStatus
from clips.selectors import clip_stats
from clips.tests.audio import tone
from clips.tests.system.servers import s3_client, s3_server
from clips.tests.test_admin import ADD_URL, form
from clips_project import settings as project_settings

LIST_URL = "/api/v1/clips"


@pytest.fixture
def bucket(settings, tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    """An S3 server with an empty bucket, the app's default storage (as settings.py
    makes it from the environment)."""
    with s3_server(tmp_path) as env:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": project_settings.bucket_storage_from_env(),
        }
        yield env


def keys(env: dict[str, str]) -> list[str]:
    """The bucket's object names, through the S3 API itself."""
    listed = s3_client(env).list_objects_v2(Bucket=env["AWS_STORAGE_BUCKET_NAME"])
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture
def upload(curator_client, django_capture_on_commit_callbacks):
    """Add a clip through the API and ingest it, as the worker would."""

    def add(data: bytes) -> Clip:
        with django_capture_on_commit_callbacks(execute=True):
            return _post(curator_client, data)

    return add


def _post(curator_client, data: bytes) -> Clip:
    payload = {
        "title": "Tone",
        "genre": "ambient",
        "duration": "2",
        "audio_file": SimpleUploadedFile("tone.wav", data, content_type="audio/wav"),
    }
    response = curator_client.post(LIST_URL, payload)
    assert response.status_code == 201, response.content
    return Clip.objects.get(pk=response.json()["id"])


def stream(client, clip: Clip, **headers):
    return client.get(f"{LIST_URL}/{clip.pk}/stream?format=original", **headers)


def test_the_bucket_is_used_only_when_named(monkeypatch):
    monkeypatch.delenv("AWS_STORAGE_BUCKET_NAME", raising=False)
    assert project_settings.bucket_storage_from_env() is None
    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "clips")
    options = project_settings.bucket_storage_from_env()["OPTIONS"]
    assert options["addressing_style"] == "path"
    assert options["default_acl"] is None
    assert options["file_overwrite"] is False
    assert options["querystring_expire"] == project_settings.CLIPS_S3_URL_SECONDS


def test_an_api_upload_and_its_renditions_land_in_the_bucket(
    bucket, upload, curator_client, media_root
):
    audio = tone("wav")
    clip = upload(audio)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.READY
    names = keys(bucket)
    assert clip.audio_file.name in names
    assert {r.file.name for r in clip.renditions.all()} <= set(names)
    assert not media_root.exists()  # nothing on local disk
    response = curator_client.get(f"{LIST_URL}/{clip.pk}/waveform")
    assert response.status_code == 200
    assert b"".join(stream(curator_client, clip).streaming_content) == audio


def test_an_admin_upload_lands_in_the_bucket(
    bucket, admin_client, django_capture_on_commit_callbacks
):
    upload_file = SimpleUploadedFile("take.wav", tone("wav"), content_type="audio/wav")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD_URL, form(audio_file=upload_file))
    assert response.status_code == 302
    clip = Clip.objects.get()
    assert clip.audio_file.name in keys(bucket)
    assert clip.status == ClipStatus.READY


def test_a_second_upload_of_the_same_name_never_overwrites_the_first(
    bucket, upload, curator_client
):
    audio = [tone("wav", seconds=seconds) for seconds in (1, 2)]
    clips = [upload(data) for data in audio]
    assert clips[0].audio_file.name != clips[1].audio_file.name
    for clip, data in zip(clips, audio, strict=True):
        assert b"".join(stream(curator_client, clip).streaming_content) == data


def test_an_ingested_clips_stream_asks_the_bucket_nothing(
    bucket, upload, client, settings
):
    clip = upload(tone("wav"))
    settings.CLIPS_STREAM_OFFLOAD = True
    # The same bucket at an address where nothing answers: presigning is local.
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**options, "endpoint_url": "http://127.0.0.1:9"},
        },
    }
    response = client.get(f"{LIST_URL}/{clip.pk}/stream", HTTP_RANGE="bytes=0-99")
    assert response.status_code == 200  # nginx makes it the 206
    assert response["X-Accel-Redirect"].startswith("/_protected/bucket/renditions/")
    assert response["X-Clips-Bucket-Range"] == "bytes=0-99"
    assert response["X-Clips-Bucket-Url"].startswith("http://127.0.0.1:9/")
    assert response["ETag"] == f'"{clip.renditions.get(name="preview").digest[:32]}"'


def test_the_redirect_mode_sends_the_client_to_the_bucket(
    bucket, upload, client, settings
):
    audio = tone("wav")
    clip = upload(audio)
    settings.CLIPS_S3_REDIRECT = True
    response = stream(client, clip, HTTP_RANGE="bytes=0-99")
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    fetched = requests.get(
        response["Location"], headers={"Range": "bytes=0-99"}, timeout=10
    )
    assert fetched.status_code == 206
    assert fetched.content == audio[:100]
    assert fetched.headers["Content-Type"] == "audio/wav"
    # Django still answers what it decides: here a 304.
    etag = client.head(f"{LIST_URL}/{clip.pk}/stream?format=original")["ETag"]
    assert stream(client, clip, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_audio_deleted_from_the_bucket_is_404(bucket, upload, client):
    clip = upload(tone("wav"))
    clip.audio_file.storage.delete(clip.audio_file.name)
    assert clip.audio_file.name not in keys(bucket)
    response = stream(client, clip)
    assert response.status_code == 404
    assert response.json()["code"] == "audio_missing"
    assert clip_stats(clip=clip).play_count == 0


def test_readiness_checks_the_bucket(bucket, db, client, settings):
    assert client.get("/readyz").json()["checks"]["storage"] == "ok"
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**options, "bucket_name": "no-such-bucket"},
        },
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "Unavailable: S3 NoSuchBucket"


def test_the_digest_backfill_migration_reads_the_bucket(bucket, curator_client):
    backfill = importlib.import_module("clips.migrations.0006_audio_digest_backfill")
    audio = tone("wav")
    clip, gone = (_post(curator_client, data) for data in (audio, tone("flac")))
    gone.audio_file.storage.delete(gone.audio_file.name)
    assert clip.audio_digest == gone.audio_digest == ""  # not ingested
    backfill.digest_existing_audio(django_apps, None)
    clip.refresh_from_db()
    gone.refresh_from_db()
    assert clip.audio_digest == hashlib.sha256(audio).hexdigest()
    assert gone.audio_digest == ""  # left for its first stream


def test_sweep_deletes_an_orphan_from_the_bucket(bucket, upload):
    clip = upload(tone("wav"))
    orphan = default_storage.save("renditions/ab/orphan.json", ContentFile(b"{}"))
    stored = keys(bucket)
    call_command(
        "sweep_files", "--min-age", "0", stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert keys(bucket) == sorted(set(stored) - {orphan})
    assert clip.audio_file.name in keys(bucket)
