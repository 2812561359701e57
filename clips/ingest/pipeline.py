"""The ingest: read a clip's audio once, probe it, store its renditions, mark it.

clips.ingest.analysis decodes, clips.ingest.preview renders the previews; this
module decides what the clip becomes and writes it. clips.tasks queues clip_ingest
and runs it in the background (Celery), for new audio and for previews owed.
"""

import hashlib
import mimetypes
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from clips.files import cleanup, storage
from clips.ingest import analysis, loudness, preview
from clips.ingest.outbox import WORK_DIR_PREFIX
from clips.models import (
    MAX_DURATION_SECONDS,
    Clip,
    ClipStatus,
    Rendition,
    RenditionName,
)
from clips.remote.origin import OriginBlocked, OriginTooLarge, origin_open


class IngestRetry(Exception):
    """The origin or the storage failed for now: the task tries again later."""


def clip_ingest(*, clip_id: int) -> Clip | None:
    """Read a clip's audio: probe it, store its preview and waveform, mark it.

    Idempotent: renditions are named by their content, and the clip's row
    changes in one transaction at the end, and only if its audio is still the
    one that was read (else the newer audio's own task does the work). Returns
    the clip as it left it, ready or failed, or None when the clip was deleted or
    got new audio meanwhile. Raises IngestRetry for failures worth retrying; audio
    that is not audio fails.
    """
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None:
        return None  # deleted meanwhile
    source = (clip.audio_file.name or "", clip.audio_url)
    with tempfile.TemporaryDirectory(prefix=WORK_DIR_PREFIX) as work:
        work = Path(work)
        original = work / "original"
        try:
            size, digest = _original_copy(clip, original)
            analysed = analysis.analyse(original, max_seconds=MAX_DURATION_SECONDS)
        except (
            analysis.AudioRefused,
            OriginBlocked,
            OriginTooLarge,
            _OriginRefused,
        ) as err:
            return _ingest_finish(
                clip_id, source, failure=str(err) or "The remote audio is too large."
            )
        facts = analysed.facts
        loudest = preview.loudest_start(
            analysed.energy,
            block_seconds=analysis.ENERGY_BLOCK_SECONDS,
            seconds=settings.CLIPS_PREVIEW_SECONDS,
        )
        wanted = previews_wanted(
            audio_digest=digest,
            length=facts.duration,
            preview_start=clip.preview_start,
            loudest_start=loudest,
        )
        renditions = _previews_render(
            original, work, wanted=wanted, length=facts.duration
        )
        renditions.append(
            _rendition_store(
                RenditionName.WAVEFORM,
                _write(
                    work / "waveform.json",
                    analysis.waveform_dumps(analysed.waveform),
                ),
                "application/json",
                ".json",
                peaks=analysis.peaks_summary(analysed.waveform.data),
            )
        )
        if clip.is_remote:
            extension = mimetypes.guess_extension(facts.content_type) or ".audio"
            renditions.append(
                _rendition_store(
                    RenditionName.ORIGINAL, original, facts.content_type, extension
                )
            )
        # Still in the work directory: a rendition deleted meanwhile is stored again.
        return _ingest_finish(
            clip_id,
            source,
            facts=facts,
            measured=_Measured(
                loudness=analysed.loudness,
                loudest_start=loudest,
                preview_start=clip.preview_start,
            ),
            size=size,
            digest=digest,
            renditions=renditions,
        )


def clip_ingest_give_up(*, clip_id: int, reason: str) -> None:
    """The task's last retry failed too: the clip fails, with why."""
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None:
        return
    clip.status, clip.failure_reason = ClipStatus.FAILED, reason[:500]
    clip.ingested_at, clip.ingest_starts = timezone.now(), 0
    # A save, not an update(): its signal tells the stream (a ready clip ingested
    # again may have been streamable until now).
    clip.save(
        update_fields=["status", "failure_reason", "ingested_at", "ingest_starts"]
    )


class _OriginRefused(Exception):
    """The audio origin refused the audio."""


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class _Measured:
    loudness: loudness.Loudness  # the original's
    loudest_start: float
    preview_start: float | None  # the curator's start the previews were made from


@dataclass(frozen=True)
class PreviewsWanted:
    excerpt: preview.Excerpt
    target_lufs: float
    recipes: dict[str, str]  # by format name: clips.ingest.preview.recipe


def previews_wanted(
    *,
    audio_digest: str,
    length: float,
    preview_start: float | None,
    loudest_start: float | None,
) -> PreviewsWanted:
    """The previews today's settings make of this audio: from the curator's start,
    else its loudest stretch."""
    start = preview_start if preview_start is not None else (loudest_start or 0.0)
    excerpt = preview.excerpt_of(
        length=length, start=start, seconds=settings.CLIPS_PREVIEW_SECONDS
    )
    target = settings.CLIPS_PREVIEW_LUFS
    recipes = {
        each.name: preview.recipe(
            audio_digest=audio_digest,
            excerpt=excerpt,
            target_lufs=target,
            format=each,
        )
        for each in preview.FORMATS
    }
    return PreviewsWanted(excerpt=excerpt, target_lufs=target, recipes=recipes)


def _previews_render(
    original: Path, work: Path, *, wanted: PreviewsWanted, length: float
) -> list["_NewRendition"]:
    """The previews `wanted`, rendered and stored, each with its recipe."""
    excerpt = wanted.excerpt
    rendered = preview.preview_render(
        original,
        excerpt=excerpt,
        length=length,
        target_lufs=wanted.target_lufs,
        work=work,
    )
    return [
        _rendition_store(
            each.format.name,
            each.path,
            each.format.content_type,
            each.format.extension,
            codec=each.format.codec,
            bit_rate=each.format.bit_rate,
            excerpt_start=excerpt.start,
            excerpt_duration=excerpt.duration,
            loudness_lufs=each.loudness.lufs,
            true_peak_dbtp=each.loudness.true_peak_dbtp,
            recipe=wanted.recipes[each.format.name],
        )
        for each in rendered
    ]


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
    except storage.STORAGE_ERRORS as error:
        reason = storage.error_reason(error)
        raise IngestRetry(f"The audio could not be read: {reason}") from error
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


@dataclass
class _NewRendition:
    rendition: Rendition  # unsaved
    path: Path  # its content, in the work directory


def _rendition_store(
    name: str, path: Path, content_type: str, extension: str, **fields
) -> _NewRendition:
    """Put a rendition's file in storage under its digest; `fields` are the row's."""
    with path.open("rb") as data:
        digest = hashlib.file_digest(data, "sha256").hexdigest()
    rendition = Rendition(
        name=name,
        file=_file_store(f"renditions/{digest[:2]}/{digest}{extension}", path),
        content_type=content_type,
        size_bytes=path.stat().st_size,
        digest=digest,
        **fields,
    )
    return _NewRendition(rendition=rendition, path=path)


def _file_store(name: str, path: Path) -> str:
    """Store `path` as `name` unless there already (another clip's same rendition)."""
    try:
        if cleanup.storage.exists(name):
            return name
        with path.open("rb") as data:
            return cleanup.storage.save(name, File(data))
    except storage.STORAGE_ERRORS as error:
        reason = storage.error_reason(error)
        raise IngestRetry(f"The storage failed: {reason}") from error


def _ingest_finish(
    clip_id: int,
    source: tuple[str, str],
    *,
    failure: str = "",
    facts: analysis.AudioFacts | None = None,
    measured: _Measured | None = None,
    size: int | None = None,
    digest: str = "",
    renditions: list[_NewRendition] = (),
) -> Clip | None:
    with transaction.atomic():
        clip = Clip.objects.select_for_update().filter(pk=clip_id).first()
        if clip is None or (clip.audio_file.name or "", clip.audio_url) != source:
            # Deleted, or its audio changed (that change queued its own ingest):
            # what this one stored goes, unless another clip uses it.
            cleanup.files_release_on_commit(
                names=[stored.rendition.file.name for stored in renditions]
            )
            return None
        clip.ingested_at = timezone.now()
        clip.ingest_starts = 0  # counts the starts that never finished
        clip.renditions.all().delete()
        # A new start asked for meanwhile queued its own render: still owed.
        clip.preview_owed = bool(
            clip.preview_owed
            and not failure
            and clip.preview_start != measured.preview_start
        )
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
        clip.loudness_lufs = measured.loudness.lufs
        clip.true_peak_dbtp = measured.loudness.true_peak_dbtp
        clip.loudest_start = measured.loudest_start
        clip.save()
        Rendition.objects.bulk_create(_renditions_held(clip, renditions))
    return clip


def _renditions_held(clip: Clip, renditions: list[_NewRendition]) -> list[Rendition]:
    """The clip's renditions, each file locked until the commit and there for sure.

    A file another clip released since _rendition_store found it is stored again;
    while this transaction holds the lock, no release can delete it.
    """
    held = []
    for stored in sorted(renditions, key=lambda stored: stored.rendition.file.name):
        rendition = stored.rendition
        cleanup.file_lock(rendition.file.name)
        rendition.file = _file_store(rendition.file.name, stored.path)
        rendition.clip = clip
        held.append(rendition)
    return held
