"""Where files are kept: local MEDIA_ROOT or an S3-compatible bucket (settings).

Everything else goes through Django's storage API; this module holds the two
things that API does not say: a short-lived URL the bucket answers itself, and
which storage errors mean "no such file".
"""

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.storage import Storage
from storages.backends.s3 import S3Storage

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
