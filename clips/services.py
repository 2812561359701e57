"""Writes: clips, curators and stream metering (plays are counted in clips.plays)."""

import hashlib
import mimetypes
import tempfile
import time
from pathlib import Path, PurePath
from typing import Literal

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clips import ingest, metrics, sample_audio
from clips.models import (
    AUDIO_CONTENT_TYPES,
    MAX_DURATION_SECONDS,
    Clip,
    ClipStatus,
    Rendition,
    RenditionName,
)
from clips.origin import OriginBlocked, OriginTooLarge, origin_open

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


# Written by the ingest alone: an edit that keeps the audio never writes them, so a
# form opened before the ingest finished cannot undo it (and the measured duration
# stays once there is one).
INGEST_FIELDS = (
    "status",
    "failure_reason",
    "codec",
    "sample_rate",
    "channels",
    "bit_rate",
    "duration_corrected_from",
    "ingested_at",
    "content_type",
    "size_bytes",
    "audio_digest",
)


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
    """Validate a new or edited clip and save it; new audio is queued for ingest.

    Until the ingest has read it, the clip is pending: its content type is the
    one its name claims, and listeners do not see it.
    """
    clip.full_clean()
    stored = (
        Clip.objects.filter(pk=clip.pk)
        .values("audio_file", "audio_url", "ingested_at")
        .first()
    )
    if not _audio_changed(clip, stored):
        measured = ("duration",) if stored["ingested_at"] else ()
        clip.save(
            update_fields=[
                field.name
                for field in Clip._meta.concrete_fields
                if not field.primary_key and field.name not in INGEST_FIELDS + measured
            ]
        )
        return clip
    if clip.audio_file:
        suffix = PurePath(clip.audio_file.name).suffix.lower()
        clip.size_bytes = clip.audio_file.size
        clip.content_type = AUDIO_CONTENT_TYPES[suffix]
    else:  # known once the ingest has fetched it
        clip.content_type, clip.size_bytes = "", None
    clip.audio_digest = ""
    clip.status, clip.failure_reason = ClipStatus.PENDING, ""
    clip.duration_corrected_from = clip.ingested_at = None
    with transaction.atomic():
        clip.save()
        clip.renditions.all().delete()  # made of the audio this one replaces
        transaction.on_commit(lambda: clip_ingest_queue(clip_id=clip.pk))
    return clip


def _audio_changed(clip: Clip, stored: dict | None) -> bool:
    if clip.audio_file and not clip.audio_file._committed:  # a new upload
        return True
    return stored is None or (stored["audio_file"], stored["audio_url"]) != (
        clip.audio_file.name or "",
        clip.audio_url,
    )


def clip_ingest_queue(*, clip_id: int) -> None:
    """Queue a clip's ingest (run at once when no broker is configured)."""
    from clips import tasks  # tasks call services: import at use

    tasks.clip_ingest.delay(clip_id)


class IngestRetry(Exception):
    """The origin or the storage failed for now: the task tries again later."""


def clip_ingest(*, clip_id: int) -> Clip | None:
    """Read a clip's audio: probe it, store its preview and waveform, mark it.

    Idempotent: renditions are named by their content, and the clip's row
    changes in one transaction at the end, and only if its audio is still the
    one that was read (else the newer audio's own task does the work). Raises
    IngestRetry for failures worth retrying; audio that is not audio fails.
    """
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None:
        return None  # deleted meanwhile
    source = (clip.audio_file.name or "", clip.audio_url)
    with tempfile.TemporaryDirectory(prefix="clips-ingest-") as work:
        original = Path(work) / "original"
        preview = Path(work) / "preview.mp3"
        try:
            size, digest = _original_copy(clip, original)
            analysis = ingest.analyse(original, preview=preview)
        except (ingest.NotAudio, OriginBlocked, OriginTooLarge, _OriginRefused) as err:
            return _ingest_finish(
                clip_id, source, failure=str(err) or "The remote audio is too large."
            )
        facts = analysis.facts
        if facts.duration > MAX_DURATION_SECONDS:
            return _ingest_finish(
                clip_id,
                source,
                failure=f"{facts.duration:.0f} s long: clips are limited to "
                f"{MAX_DURATION_SECONDS} s.",
            )
        renditions = [
            _rendition_store(
                RenditionName.PREVIEW, preview, ingest.PREVIEW_CONTENT_TYPE, ".mp3"
            ),
            _rendition_store(
                RenditionName.WAVEFORM,
                _write(
                    Path(work) / "waveform.json",
                    ingest.waveform_dumps(analysis.waveform),
                ),
                "application/json",
                ".json",
            ),
        ]
        if clip.is_remote:
            extension = mimetypes.guess_extension(facts.content_type) or ".audio"
            renditions.append(
                _rendition_store(
                    RenditionName.ORIGINAL, original, facts.content_type, extension
                )
            )
    return _ingest_finish(
        clip_id, source, facts=facts, size=size, digest=digest, renditions=renditions
    )


def clip_ingest_give_up(*, clip_id: int, reason: str) -> None:
    """The task's last retry failed too: the clip fails, with why."""
    Clip.objects.filter(pk=clip_id).update(
        status=ClipStatus.FAILED,
        failure_reason=reason[:500],
        ingested_at=timezone.now(),
    )


class _OriginRefused(Exception):
    """The audio origin refused the audio."""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _original_copy(clip: Clip, path: Path) -> tuple[int, str]:
    """Copy the clip's audio (stored, or fetched once from its URL) to `path`."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as copy:
            for block in _original_blocks(clip):
                size += len(block)
                if clip.is_remote and size > settings.CLIPS_ORIGIN_MAX_BYTES:
                    raise OriginTooLarge("The remote audio is too large.")
                digest.update(block)
                copy.write(block)
    except requests.RequestException as error:
        raise IngestRetry(f"The audio origin did not answer: {error}") from error
    except OSError as error:
        raise IngestRetry(f"The audio could not be read: {error}") from error
    return size, digest.hexdigest()


def _original_blocks(clip: Clip):
    if not clip.is_remote:
        with clip.audio_file.storage.open(clip.audio_file.name, "rb") as audio:
            yield from iter(lambda: audio.read(1024 * 1024), b"")
        return
    origin = origin_open(
        clip.audio_url, method="GET", headers={"Accept-Encoding": "identity"}
    )
    with origin:
        if origin.status_code >= 500 or origin.status_code == 429:
            raise IngestRetry(f"The audio origin answered HTTP {origin.status_code}.")
        if origin.status_code != 200:
            raise _OriginRefused(
                f"The audio origin answered HTTP {origin.status_code}."
            )
        yield from origin.iter_content(1024 * 1024)


def _rendition_store(
    name: str, path: Path, content_type: str, extension: str
) -> Rendition:
    """Put a rendition's file in storage under its digest (unsaved row)."""
    with path.open("rb") as data:
        digest = hashlib.file_digest(data, "sha256").hexdigest()
    stored = f"renditions/{digest[:2]}/{digest}{extension}"
    storage = Rendition._meta.get_field("file").storage
    try:
        if not storage.exists(stored):
            with path.open("rb") as data:
                stored = storage.save(stored, File(data))
    except OSError as error:
        raise IngestRetry(f"The storage failed: {error}") from error
    return Rendition(
        name=name,
        file=stored,
        content_type=content_type,
        size_bytes=path.stat().st_size,
        digest=digest,
    )


def _ingest_finish(
    clip_id: int,
    source: tuple[str, str],
    *,
    failure: str = "",
    facts: ingest.AudioFacts | None = None,
    size: int | None = None,
    digest: str = "",
    renditions: list[Rendition] = (),
) -> Clip | None:
    with transaction.atomic():
        clip = Clip.objects.select_for_update().filter(pk=clip_id).first()
        if clip is None or (clip.audio_file.name or "", clip.audio_url) != source:
            return clip  # deleted, or its audio changed: that change queued its own
        clip.ingested_at = timezone.now()
        clip.renditions.all().delete()
        if failure:
            clip.status, clip.failure_reason = ClipStatus.FAILED, failure[:500]
            clip.save()
            return clip
        clip.status, clip.failure_reason = ClipStatus.READY, ""
        if abs(facts.duration - clip.duration) > 1:
            clip.duration_corrected_from = clip.duration
        clip.duration = max(facts.duration, 0.1)
        clip.content_type = facts.content_type
        clip.codec, clip.bit_rate = facts.codec, facts.bit_rate
        clip.sample_rate, clip.channels = facts.sample_rate, facts.channels
        clip.size_bytes, clip.audio_digest = size, digest
        clip.save()
        for rendition in renditions:
            rendition.clip = clip
        Rendition.objects.bulk_create(renditions)
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
    size and modification time do not. The ingest records it as it reads the
    audio; a clip streamed before that (a curator's preview of a pending clip, a
    fixture's sample) gets it here on its first stream, and migration 0006 gave
    it to files stored before the field existed.
    """
    if not clip.audio_digest:
        with clip.audio_file.storage.open(clip.audio_file.name, "rb") as audio:
            clip.audio_digest = hashlib.file_digest(audio, "sha256").hexdigest()
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
