import factory
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from factory.django import DjangoModelFactory

from clips.ingest import pipeline
from clips.models import Clip, ClipStatus, Genre, Play
from clips.tests.audio import tone

# A recognisable byte pattern, so a test can tell which bytes a range returned.
AUDIO_BYTES = bytes(i % 251 for i in range(10_000))
# 300 KB: more than the disk of conftest's full_media_root holds.
LARGE_AUDIO_BYTES = AUDIO_BYTES * 30


class ClipFactory(DjangoModelFactory):
    """A clip with an uploaded (fake) WAV of AUDIO_BYTES."""

    class Meta:
        model = Clip
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Clip {n}")
    description = factory.Faker("sentence")
    genre = Genre.AMBIENT
    duration = 6.0
    audio_file = factory.django.FileField(filename="clip.wav", data=AUDIO_BYTES)
    content_type = "audio/wav"
    size_bytes = len(AUDIO_BYTES)
    # As if ingested: these bytes are not audio, but tests of streaming need clips
    # that listeners may hear (test_tasks.py ingests real audio).
    status = ClipStatus.READY


class RemoteClipFactory(ClipFactory):
    """A clip whose audio lives at a remote URL."""

    audio_file = ""
    audio_url = "https://audio.example.com/clip.wav"
    content_type = ""
    size_bytes = None


class PlayFactory(DjangoModelFactory):
    class Meta:
        model = Play

    clip = factory.SubFactory(ClipFactory)
    played_at = factory.LazyFunction(timezone.now)
    listener = factory.Sequence(lambda n: f"anon:{n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


def ingested_clip(data: bytes | None = None) -> Clip:
    """A clip of real audio (a tone unless `data`), ingested here: ready, with its
    renditions."""
    clip = ClipFactory(audio_file__data=data or tone("wav"), status=ClipStatus.PENDING)
    clip = pipeline.clip_ingest(clip_id=clip.pk)
    assert clip.status == ClipStatus.READY, clip.failure_reason
    return clip


def stream_url(clip: Clip) -> str:
    return reverse("clip-stream", args=[clip.pk])
