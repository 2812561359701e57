"""Writes: every change to clips and their play statistics goes through here."""

import datetime
import time
from pathlib import PurePath
from typing import Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clips import metrics
from clips.models import AUDIO_CONTENT_TYPES, Clip, Play, PlayTotal

CURATORS_GROUP = "Curators"
CURATOR_PERMISSIONS = ["add_clip", "change_clip", "view_clip"]

# Safari probes a media URL with "bytes=0-1" before it really starts playing.
PROBE_MAX_BYTES = 2
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
    else:
        # Known only once the origin answers; the stream view passes its headers on.
        clip.content_type = ""
        clip.size_bytes = None
    clip.save()
    return clip


def is_new_listen(*, first_byte: int | None, length: int | None) -> bool:
    """A listen starts at byte 0; later Range chunks and tiny probes don't count.

    first_byte is None when the start is unknown (a suffix range on a remote clip);
    length is None when the response runs to the end of an unknown-sized body.
    """
    if first_byte != 0:
        return False
    return length is None or length > PROBE_MAX_BYTES


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


# A listen in one statement, so one round trip and its own transaction: the play
# row, and the total created or incremented in place (ON CONFLICT locks the row,
# so concurrent listens queue and none is lost).
_PLAY_RECORD_SQL = f"""
WITH play AS (
    INSERT INTO {Play._meta.db_table} (clip_id, played_at) VALUES (%(clip)s, %(now)s)
)
INSERT INTO {PlayTotal._meta.db_table} AS total (clip_id, play_count, last_played_at)
VALUES (%(clip)s, 1, %(now)s)
ON CONFLICT (clip_id) DO UPDATE
SET play_count = total.play_count + 1, last_played_at = EXCLUDED.last_played_at
"""  # noqa: S608 (table names from our models; values are bound parameters)


def play_record(*, clip: Clip) -> None:
    """Count one listen (a Play row and play_count + 1), then in the metrics."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Every counted listen runs this: one round trip instead of four (BEGIN,
        # UPDATE, INSERT, COMMIT). bench/results.md has the before and after.
        with connection.cursor() as cursor:
            cursor.execute(_PLAY_RECORD_SQL, {"clip": clip.pk, "now": now})
    else:
        _play_record_portable(clip=clip, now=now)
    metrics.STREAMS.labels(clip_id=str(clip.pk), genre=clip.genre).inc()


@transaction.atomic
def _play_record_portable(*, clip: Clip, now: datetime.datetime) -> None:
    """The same with the ORM, for SQLite: a single UPDATE (play_count + 1)."""
    updated = PlayTotal.objects.filter(clip=clip).update(
        play_count=F("play_count") + 1, last_played_at=now
    )
    if not updated:
        # First play of this clip: get_or_create survives a concurrent first play.
        PlayTotal.objects.get_or_create(clip=clip)
        PlayTotal.objects.filter(clip=clip).update(
            play_count=F("play_count") + 1, last_played_at=now
        )
    Play.objects.create(clip=clip, played_at=now)


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
