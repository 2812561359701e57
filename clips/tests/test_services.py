import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from clips import services
from clips.plays import play_record
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory, RemoteClipFactory

pytestmark = pytest.mark.django_db


def test_clip_create_derives_content_type_and_size_from_the_upload():
    clip = services.clip_create(
        title="Upload",
        genre="jazz",
        duration=3,
        audio_file=SimpleUploadedFile("take.ogg", AUDIO_BYTES),
    )
    assert clip.content_type == "audio/ogg"
    assert clip.size_bytes == len(AUDIO_BYTES)
    assert clip.audio_file.storage.exists(clip.audio_file.name)


def test_clip_create_rejects_a_clip_without_audio():
    with pytest.raises(ValidationError):
        services.clip_create(title="Silent", genre="jazz", duration=3)


def test_switching_a_clip_to_a_url_clears_file_metadata():
    clip = ClipFactory()
    clip.audio_file = ""
    clip.audio_url = "https://audio.example.com/x.mp3"
    services.clip_save(clip=clip)
    clip.refresh_from_db()
    assert clip.content_type == ""
    assert clip.size_bytes is None


def test_editing_a_clip_never_overwrites_its_play_count():
    clip = ClipFactory()
    stale = type(clip).objects.get(
        pk=clip.pk
    )  # a curator's form, opened before the plays
    play_record(clip=clip, listener="user:1")
    play_record(clip=clip, listener="user:2")
    stale.title = "Renamed"
    services.clip_save(clip=stale)
    assert clip_stats(clip=clip).play_count == 2


def test_remote_clip_factory_builds_a_valid_clip():
    RemoteClipFactory().full_clean()


@pytest.mark.parametrize(
    ("name", "content_type", "stored"),
    [
        ("song.mp3", "audio/mpeg", "song.mp3"),
        ("song.oga", "audio/ogg", "song.oga"),
        ("blob", "audio/ogg", "blob.ogg"),
        ("take.png", "audio/aac", "take.aac"),
        ("song.mp3", "application/octet-stream", "song.mp3"),
        ("run.exe", "text/plain", "run.exe"),
    ],
)
def test_an_uploads_audio_content_type_decides_its_extension(
    name, content_type, stored
):
    upload = SimpleUploadedFile(name, b"...", content_type=content_type)
    assert services.audio_file_name(upload=upload) == stored
