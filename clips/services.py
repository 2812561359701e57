"""Writes: every change to clips and their play statistics goes through here."""

import datetime
from pathlib import PurePath

from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from clips.models import AUDIO_CONTENT_TYPES, Clip, Play, PlayTotal

# Safari probes a media URL with "bytes=0-1" before it really starts playing.
PROBE_MAX_BYTES = 2


def clip_create(
    *,
    title: str,
    genre: str,
    duration_seconds: float,
    description: str = "",
    audio_url: str = "",
    audio_file: UploadedFile | None = None,
) -> Clip:
    clip = Clip(
        title=title,
        genre=genre,
        duration_seconds=duration_seconds,
        description=description,
        audio_url=audio_url,
        audio_file=audio_file,
    )
    return clip_save(clip=clip)


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
    """Count one listen: a Play row and play_count + 1, never a read-modify-write."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        # Every counted listen runs this: one round trip instead of four (BEGIN,
        # UPDATE, INSERT, COMMIT). bench/results.md has the before and after.
        with connection.cursor() as cursor:
            cursor.execute(_PLAY_RECORD_SQL, {"clip": clip.pk, "now": now})
    else:
        _play_record_portable(clip=clip, now=now)


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
