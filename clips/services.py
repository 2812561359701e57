"""Writes: every change to clips and their play statistics goes through here."""

from pathlib import PurePath

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clips.models import AUDIO_CONTENT_TYPES, Clip, Play, PlayTotal

CURATORS_GROUP = "Curators"
CURATOR_PERMISSIONS = ["add_clip", "change_clip", "view_clip"]

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


@transaction.atomic
def play_record(*, clip: Clip) -> None:
    """Count one listen with a single UPDATE (play_count + 1): no read-modify-write."""
    now = timezone.now()
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
