"""What a stream decision needs to know of a ready clip's audio, in the shared cache.

The file, its type, digest, size and time of ingest, and the clip's genre are two
queries and most of a stream's CPU otherwise. They are kept per clip and format
until the clip changes (clips.caching.clip_value_keep). Only ready clips' facts
are kept, so visibility needs no user: everyone may stream a ready clip.
"""

import datetime
from dataclasses import dataclass

from django.core.files.storage import Storage, default_storage

from clips import caching


@dataclass(frozen=True)
class StoredAudio:
    """Audio in storage, as the stream sends it, with what the database knows of it.

    What it does not know yet is asked of the storage (a round trip to the
    bucket), so an ingested clip's stream costs none.
    """

    files: Storage
    name: str
    content_type: str
    digest: str | None  # None: worked out (and kept) on first stream
    size: int | None
    modified: datetime.datetime | None  # when the ingest read it

    @property
    def complete(self) -> bool:
        return None not in (self.digest, self.size, self.modified)


@dataclass(frozen=True)
class ClipAudio:
    """A ready clip's audio in one format, and the genre its plays are counted by."""

    genre: str
    audio: StoredAudio


def facts_keys(*, clip_id: int, audio_format: str) -> list[str]:
    """The cache keys to read for facts_found()."""
    return caching.clip_value_keys(
        f"clips:stream-facts:{clip_id}:{audio_format}", clip_id=clip_id
    )


def facts_found(values: list) -> ClipAudio | None:
    """The facts read at facts_keys(), if kept since the clip last changed."""
    kept = caching.clip_value_found(values)
    if kept is None:
        return None
    return ClipAudio(
        genre=kept["genre"],
        audio=StoredAudio(
            files=default_storage,
            name=kept["name"],
            content_type=kept["content_type"],
            digest=kept["digest"],
            size=kept["size"],
            modified=kept["modified"],
        ),
    )


def facts_keep(
    *, clip_id: int, audio_format: str, generation: int | None, facts: ClipAudio
) -> None:
    """Keep a ready clip's facts, read from the database after `generation` was."""
    audio = facts.audio
    if not audio.complete or audio.files is not default_storage:
        return
    key, _ = facts_keys(clip_id=clip_id, audio_format=audio_format)
    kept = {
        "genre": facts.genre,
        "name": audio.name,
        "content_type": audio.content_type,
        "digest": audio.digest,
        "size": audio.size,
        "modified": audio.modified,
    }
    caching.clip_value_keep(key, generation=generation, value=kept)
