"""What a stream decision needs to know of a ready clip's audio, in the shared cache.

The file, its type, digest, size and time of ingest, and the clip's genre are two
queries and most of a stream's CPU otherwise. They are kept per clip and format
under the clip's generation, a counter that every change to the clip or its
renditions bumps (clips.signals), at once and again once the change commits: a
value read from the database before a commit is stored under the generation it
read first, so it is never taken after the commit. Only ready clips' facts are
kept, so visibility needs no user: everyone may stream a ready clip.
"""

import datetime
from contextlib import suppress
from dataclasses import dataclass

from django.core.cache import cache
from django.core.files.storage import Storage, default_storage
from django.db import transaction

from clips import caching

# Each value lives this long at most: a bump lost while Redis was away (and kept
# its data) is forgotten within it.
FACTS_SECONDS = 300


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
    """The cache keys to read for facts_found(): the facts, then the generation."""
    return [f"clips:stream:{clip_id}:{audio_format}", _generation_key(clip_id)]


def facts_found(values: list) -> ClipAudio | None:
    """The facts read at facts_keys(), if kept under the clip's generation now."""
    kept, generation = values
    if not kept or kept["generation"] != (generation or 0):
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
        "generation": generation or 0,
        "genre": facts.genre,
        "name": audio.name,
        "content_type": audio.content_type,
        "digest": audio.digest,
        "size": audio.size,
        "modified": audio.modified,
    }
    with suppress(caching.UNAVAILABLE):  # the read before failed too, and counted
        cache.set(key, kept, FACTS_SECONDS)


def clip_changed(*, clip_id: int) -> None:
    """Forget the clip's facts now and once the change commits."""
    _generation_bump(clip_id)
    transaction.on_commit(lambda: _generation_bump(clip_id))


def _generation_key(clip_id: int) -> str:
    return f"clips:stream-generation:{clip_id}"


def _generation_bump(clip_id: int) -> None:
    key = _generation_key(clip_id)
    try:
        try:
            cache.incr(key)
        except ValueError:  # none yet (or Redis restarted: its facts went too)
            cache.set(key, 1, None)
    except caching.UNAVAILABLE as error:
        caching.cache_unavailable(None, use="stream", error=error)
