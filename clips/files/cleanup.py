"""Files in storage that no row names any more are deleted once the change commits.

A clip's upload is named by its clip's row; renditions are named by their content
(renditions/xx/<sha>.ext), so two clips with the same audio share them, and two
sample clips may share one sample's audio. A file goes only when, under its lock,
no Clip.audio_file and no Rendition.file names it: releasing is idempotent, and a
file another clip still uses, or is about to use (clips.ingest.pipeline takes the same
lock), stays.
"""

import hashlib
import logging
from collections.abc import Iterable

from django.db import transaction

from clips.models import Clip, Rendition

logger = logging.getLogger(__name__)

# Both fields keep their files in the default storage.
storage = Rendition._meta.get_field("file").storage


def file_lock(name: str) -> None:
    """Hold `name`'s lock until the transaction ends.

    On PostgreSQL an advisory transaction lock keyed by the name. SQLite needs
    none: each transaction takes the database's write lock as it begins
    (transaction_mode IMMEDIATE in settings), which serialises them all.
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"clips-file:{name}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)",
                [int.from_bytes(digest[:8], "big", signed=True)],
            )


def files_release_on_commit(*, names: Iterable[str]) -> None:
    """Delete these files once the transaction commits, if no row names them then.

    Nothing happens if it rolls back. A storage error is logged (robust): the
    change is committed already, and the file is only left over.
    """
    for name in sorted({name for name in names if name}):
        # A function with a name: a robust hook's error log names it.
        transaction.on_commit(lambda name=name: file_release(name=name), robust=True)


def file_release(*, name: str) -> bool:
    """Delete `name` from storage unless a row names it; True if it was deleted."""
    with transaction.atomic():
        file_lock(name)
        if file_referenced(name=name):
            return False
        storage.delete(name)
    logger.info("Deleted %s: no clip uses it any more.", name)
    return True


def file_referenced(*, name: str) -> bool:
    return (
        Rendition.objects.filter(file=name).exists()
        or Clip.objects.filter(audio_file=name).exists()
    )


def files_referenced() -> set[str]:
    """Every file name a row holds, in two queries: for sweeps of whole storages."""
    return set(Rendition.objects.values_list("file", flat=True)) | set(
        Clip.objects.exclude(audio_file="").values_list("audio_file", flat=True)
    )
