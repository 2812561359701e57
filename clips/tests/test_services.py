import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from clips import services
from clips.models import Play
from clips.selectors import clip_stats
from clips.tests.factories import AUDIO_BYTES, ClipFactory, RemoteClipFactory

pytestmark = pytest.mark.django_db


def test_first_play_creates_the_total_and_a_play_row():
    clip = ClipFactory()
    services.play_record(clip=clip)
    stats = clip_stats(clip=clip)
    assert stats.play_count == 1
    assert stats.last_played_at is not None
    assert Play.objects.filter(clip=clip).count() == 1


def test_plays_add_up():
    clip = ClipFactory()
    for _ in range(5):
        services.play_record(clip=clip)
    assert clip_stats(clip=clip).play_count == 5
    assert Play.objects.filter(clip=clip).count() == 5


@pytest.mark.parametrize(
    ("first_byte", "length", "counts"),
    [
        (0, None, True),
        (0, 10_000, True),
        (0, 3, True),
        (0, 2, False),  # Safari's bytes=0-1 probe
        (0, 1, False),
        (1, None, False),
        (5000, 100, False),
        (None, None, False),  # suffix range of a remote clip: start unknown
    ],
)
def test_is_new_listen(first_byte, length, counts):
    assert services.is_new_listen(first_byte=first_byte, length=length) is counts


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
    services.play_record(clip=clip)
    services.play_record(clip=clip)
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
