"""Where files are kept: local MEDIA_ROOT or an S3-compatible bucket (settings).

Everything else goes through Django's storage API; this module holds what that API
does not say: a short-lived URL the bucket answers itself, which storage errors
mean "no such file" and which "full", and a disk storage that never leaves a
partial file behind.
"""

import errno
import logging
import os
import posixpath
import secrets

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage
from storages.backends.s3 import S3Storage

logger = logging.getLogger(__name__)

# What the storage raises: OSError from the file system (and django-storages'
# open() of a missing object), ClientError for the S3 API's error answers,
# BotoCoreError when there is no answer (connection, timeout, credentials).
STORAGE_ERRORS = (OSError, ClientError, BotoCoreError)


def error_reason(error: Exception) -> str:
    """A storage error in a few words, without paths, keys or the bucket's name."""
    if isinstance(error, ClientError):
        return f"S3 {error.response.get('Error', {}).get('Code', 'error')}"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return type(error).__name__


def file_missing(error: Exception) -> bool:
    """Whether a STORAGE_ERRORS error means the file is not there (else: an outage)."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code")
        return code in {"404", "NoSuchKey"}
    return isinstance(error, OSError)


class StorageFailed(Exception):
    """A file could not be written, and nothing of it was kept: worth a retry."""

    code = "storage_unavailable"
    message = (
        "The audio could not be stored right now, and nothing was saved. "
        "Try again later."
    )

    def __init__(self, reason: str) -> None:
        super().__init__(self.message)
        self.reason = reason  # for the operator's log, not for clients


class StorageFull(StorageFailed):
    """No space left on the disk (or the user's quota)."""

    code = "storage_full"
    message = (
        "The storage is full: the audio was not stored, and nothing was saved. "
        "Try again once space is freed."
    )


def write_failure(error: Exception) -> StorageFailed:
    """A STORAGE_ERRORS error of a write, as StorageFull or StorageFailed."""
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    return (StorageFull if full else StorageFailed)(error_reason(error))


class DiskStorage(FileSystemStorage):
    """MEDIA_ROOT, where a file shows up whole under its name, or not at all.

    Django's own writes the file under its name as the bytes come, and leaves
    what it wrote when the disk fills up or fails. Here the bytes go to a
    hidden name of this write's own, which is given its real name (a hard link,
    which never replaces another file) only once whole, and is deleted if the
    write fails. A leftover of a killed process is a file no row names, which
    `manage.py sweep_files` deletes.
    """

    def _save(self, name: str, content: File) -> str:
        # A name no other write can have: Django's _save() keeps it.
        partial = posixpath.join(
            posixpath.dirname(name), f".partial-{secrets.token_hex(16)}"
        )
        try:
            super()._save(partial, content)
            while True:
                try:
                    os.link(self.path(partial), self.path(name))
                    return name
                except FileExistsError:  # taken since get_available_name()
                    name = self.get_available_name(name)
        finally:
            self._discard(partial)

    def _discard(self, name: str) -> None:
        try:
            os.remove(self.path(name))
        except (FileNotFoundError, NotADirectoryError):
            pass  # never made: the write failed before it
        except OSError as error:
            logger.warning("Could not delete %s: %s", name, error_reason(error))


def presigned_url(
    storage: Storage, name: str, *, content_type: str | None = None
) -> str | None:
    """A GET URL for `name` valid CLIPS_S3_URL_SECONDS, or None off the bucket.

    With content_type, the bucket answers with it whatever the object was
    stored with: for clients sent there (CLIPS_S3_REDIRECT); nginx puts ours on.
    """
    if not isinstance(storage, S3Storage):
        return None
    parameters = {"ResponseContentType": content_type} if content_type else {}
    return storage.url(
        name, parameters=parameters, expire=settings.CLIPS_S3_URL_SECONDS
    )
