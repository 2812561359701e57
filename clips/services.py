"""Writes: clips and curators (the ingest is clips.ingest, plays clips.plays)."""

import hashlib
import logging
from collections.abc import Iterable
from functools import partial
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from rest_framework.authtoken.models import Token

from clips import sample_audio, tasks
from clips.files import cleanup, storage
from clips.models import (
    AUDIO_CONTENT_TYPES,
    PLAY_COUNTS,
    Clip,
    ClipStatus,
    RenditionName,
)

logger = logging.getLogger(__name__)

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


def clip_change(*, clip: Clip, **fields) -> Clip:
    """A curator's change of a clip's text, genre or preview start; a new start
    renders its previews again."""
    for name, value in fields.items():
        setattr(clip, name, value)
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
    "ingest_queued_at",
    "ingest_started_at",
    "ingest_starts",
    "content_type",
    "size_bytes",
    "audio_digest",
    "loudest_start",
    "preview_owed",
    "loudness_lufs",
    "true_peak_dbtp",
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
    one its name claims, and listeners do not see it. A new upload the storage
    cannot take raises StorageFull or StorageFailed, and nothing is saved.
    """
    clip.full_clean()
    stored = (
        Clip.objects.filter(pk=clip.pk)
        .values("audio_file", "audio_url", "ingested_at", "preview_start")
        .first()
    )
    if not _audio_changed(clip, stored):
        measured = ("duration",) if stored["ingested_at"] else ()
        with transaction.atomic():
            clip.save(
                update_fields=[
                    field.name
                    for field in Clip._meta.concrete_fields
                    if not field.primary_key
                    and field.name not in INGEST_FIELDS + measured
                ]
            )
            if clip.preview_start != stored["preview_start"]:
                clips_previews_owe(clip_ids=[clip.pk])
        return clip
    if clip.audio_file:
        suffix = PurePath(clip.audio_file.name).suffix.lower()
        clip.size_bytes = clip.audio_file.size
        clip.content_type = AUDIO_CONTENT_TYPES[suffix]
        if not clip.audio_file._committed:
            _upload_store(clip)
    else:  # known once the ingest has fetched it
        clip.content_type, clip.size_bytes = "", None
    clip.audio_digest = ""
    clip.status, clip.failure_reason = ClipStatus.PENDING, ""
    clip.duration_corrected_from = clip.ingested_at = None
    clip.ingest_queued_at = clip.ingest_started_at = None
    clip.ingest_starts = 0
    with transaction.atomic():
        clip.save()
        clip.renditions.all().delete()  # made of the audio this one replaces
        if stored and stored["audio_file"] != clip.audio_file.name:
            cleanup.files_release_on_commit(names=[stored["audio_file"]])
        transaction.on_commit(lambda: tasks.clip_ingest_queue(clip_id=clip.pk))
    return clip


def clips_previews_owe(*, clip_ids: Iterable[int], queue: bool = True) -> list[int]:
    """Render the previews of these clips again, those ready (a pending clip's
    ingest renders them anyway): owed in the outbox until done, and queued once
    this transaction commits unless the caller runs them. Returns the owed ids."""
    ids = list(
        Clip.objects.filter(pk__in=list(clip_ids), status=ClipStatus.READY)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    Clip.objects.filter(pk__in=ids).update(
        preview_owed=True, ingest_queued_at=None, ingest_starts=0
    )
    for clip_id in ids if queue else ():
        transaction.on_commit(partial(tasks.clip_ingest_queue, clip_id=clip_id))
    return ids


def _upload_store(clip: Clip) -> None:
    """Write a new upload into storage, before its row and outside its transaction.

    Saving the row would write it too, but a storage error there is a 500 with the
    row rolled back; here it is a StorageFailed the API and the admin answer, and
    the storage has kept nothing of the file (clips.files.storage).
    """
    upload = clip.audio_file
    try:
        upload.save(upload.name, upload.file, save=False)
    except storage.STORAGE_ERRORS as error:
        failed = storage.write_failure(error)
        logger.error("Upload %s not stored: %s", upload.name, failed.reason)
        raise failed from error


def _audio_changed(clip: Clip, stored: dict | None) -> bool:
    if clip.audio_file and not clip.audio_file._committed:  # a new upload
        return True
    return stored is None or (stored["audio_file"], stored["audio_url"]) != (
        clip.audio_file.name or "",
        clip.audio_url,
    )


def clip_counts_keep(*, clip: Clip) -> None:
    """Give `clip`, about to be saved whole, the play counts its row has now."""
    if current := Clip.objects.filter(pk=clip.pk).values(*PLAY_COUNTS).first():
        for name, value in current.items():
            setattr(clip, name, value)


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


def sample_ingest_on_commit(*, clip: Clip) -> None:
    """A sample clip just loaded goes through the ingest once the load commits.

    loaddata saves rows, not renditions: this gives the samples their preview and
    waveform as any upload gets them, in the loading process (no worker needed:
    `make run`, compose's migrate). One that has a waveform is not ingested again.
    """
    if (
        settings.CLIPS_SAMPLES_INGEST
        and clip.audio_file.name in sample_audio.SHIPPED
        and not clip.renditions.filter(name=RenditionName.WAVEFORM).exists()
    ):
        transaction.on_commit(partial(tasks.clip_ingest_here, clip_id=clip.pk))
