"""Writes: clips, curators and stream metering (plays are counted in clips.plays)."""

import hashlib
import time
from pathlib import PurePath
from typing import Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from rest_framework.authtoken.models import Token

from clips import metrics, sample_audio
from clips.models import AUDIO_CONTENT_TYPES, Clip

CURATORS_GROUP = "Curators"
CURATOR_PERMISSIONS = ["add_clip", "change_clip", "view_clip"]

# An audio type's first listed extension, for an upload whose file name has none.
_EXTENSION_OF_TYPE = {
    content_type: extension
    for extension, content_type in reversed(AUDIO_CONTENT_TYPES.items())
}


def clip_create(
    *,
    title: str,
    genre: str,
    duration: float,
    description: str = "",
    audio_url: str = "",
    audio_file: UploadedFile | None = None,
) -> Clip:
    if audio_file is not None:
        audio_file.name = audio_file_name(upload=audio_file)
    clip = Clip(
        title=title,
        genre=genre,
        duration=duration,
        description=description,
        audio_url=audio_url,
        audio_file=audio_file,
    )
    return clip_save(clip=clip)


def audio_file_name(*, upload: UploadedFile) -> str:
    """The upload's name, with the extension of its Content-Type if that is ours.

    The part's Content-Type is what the client states about the bytes (a
    recorder's "blob" has no extension at all); the clip's content type is derived
    from the extension, so the two must agree. Without one of our audio types,
    the name's own extension decides, and full_clean() refuses any other.
    """
    path = PurePath(upload.name or "audio")
    stated = upload.content_type or ""
    extension = _EXTENSION_OF_TYPE.get(stated)
    if extension is None or AUDIO_CONTENT_TYPES.get(path.suffix.lower()) == stated:
        return path.name
    return path.with_suffix(extension).name


def clip_save(*, clip: Clip) -> Clip:
    """Validate a new or edited clip, derive its audio metadata and save it."""
    clip.full_clean()
    if clip.audio_file:
        suffix = PurePath(clip.audio_file.name).suffix.lower()
        clip.content_type = AUDIO_CONTENT_TYPES[suffix]
        clip.size_bytes = clip.audio_file.size
        if not clip.audio_file._committed:  # a new upload: its digest is new too
            clip.audio_digest = ""
    else:
        # Known only once the origin answers; the stream view passes its headers on.
        clip.content_type = ""
        clip.size_bytes = None
        clip.audio_digest = ""
    clip.save()
    if clip.audio_file and not clip.audio_digest:
        clip_audio_digest(clip=clip)
    return clip


def sample_audio_install(*, clip: Clip) -> bool:
    """Copy the shipped audio of a sample clip into its storage if it is missing there.

    loaddata saves rows, not files: this is what lets `loaddata sample_clips` alone
    give six playable clips, on whichever storage backend is configured.
    """
    name = clip.audio_file.name
    shipped = sample_audio.SHIPPED.get(name)
    storage = clip.audio_file.storage
    if shipped is None or storage.exists(name):
        return False
    with shipped.open("rb") as audio:
        stored = storage.save(name, File(audio))
    if stored != name:
        # Another process copied it meanwhile, and the storage kept both copies.
        storage.delete(stored)
    return stored == name


def clip_audio_digest(*, clip: Clip) -> str:
    """The SHA-256 of a clip's stored audio, worked out once and kept on the clip.

    It is the stream's ETag, so it must change with the content even when the
    size and modification time do not. Clips loaded from a fixture get theirs
    on their first stream (migration 0006 did it for files stored before).
    """
    if not clip.audio_digest:
        digest = hashlib.sha256()
        with clip.audio_file.storage.open(clip.audio_file.name, "rb") as audio:
            for block in iter(lambda: audio.read(1024 * 1024), b""):
                digest.update(block)
        clip.audio_digest = digest.hexdigest()
        Clip.objects.filter(pk=clip.pk).update(audio_digest=clip.audio_digest)
    return clip.audio_digest


def stream_error_record(*, reason: str) -> None:
    """Count a failed stream; reason must be one of metrics.STREAM_ERROR_REASONS."""
    if reason not in metrics.STREAM_ERROR_REASONS:
        # A label value outside the fixed set would be a new series per typo.
        raise ValueError(f"Unknown stream error reason: {reason!r}")
    metrics.STREAM_ERRORS.labels(reason=reason).inc()


class StreamMeter:
    """Times one audio response body and counts its bytes.

    Under gunicorn a file goes out by sendfile, never through read(), so the
    body wrappers in clips.streaming report what they can see: the first byte
    asked for, a failure, and close(), which the server calls when it is done.
    """

    def __init__(self, *, source: Literal["file", "remote"], started: float) -> None:
        self._source = source
        self._started = started
        self._first_byte_seen = False
        self._failed = False
        self._finished = False

    def first_byte(self) -> None:
        if not self._first_byte_seen:
            self._first_byte_seen = True
            metrics.STREAM_FIRST_BYTE.labels(source=self._source).observe(
                time.perf_counter() - self._started
            )

    def failed(self, *, reason: str) -> None:
        self._failed = True
        stream_error_record(reason=reason)

    def finished(self, *, sent: int, complete: bool) -> None:
        """The body is closed: a listener who left early is a client_gone error."""
        if self._finished:  # Django may close a response's body more than once
            return
        self._finished = True
        metrics.STREAM_BYTES.labels(source=self._source).inc(sent)
        metrics.STREAM_DURATION.labels(source=self._source).observe(
            time.perf_counter() - self._started
        )
        if not complete and not self._failed:
            stream_error_record(reason="client_gone")


@transaction.atomic
def curator_create(*, username: str, email: str = "") -> tuple[AbstractUser, Token]:
    """A staff user in the Curators group (may add and edit clips), with a token."""
    group, _ = Group.objects.get_or_create(name=CURATORS_GROUP)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="clips", codename__in=CURATOR_PERMISSIONS
        )
    )
    users = get_user_model().objects
    # create_user gives a new curator an unusable password until they set one.
    user = users.filter(username=username).first() or users.create_user(
        username=username, email=email
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.groups.add(group)
    token, _ = Token.objects.get_or_create(user=user)
    return user, token
