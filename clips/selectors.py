"""Reads: the querysets and figures the API, admin and pages show."""

import datetime
import json
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import (
    Count,
    JSONField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from clips import caching, listening
from clips.catalogue import search as catalogue_search
from clips.files import storage
from clips.ingest import pipeline
from clips.listening import Listening
from clips.models import PLAY_COUNTS, Clip, ClipStatus, Rendition, RenditionName

STATS_DAYS = 30
# The renditions a listener's player chooses from.
PREVIEWS = (RenditionName.PREVIEW, RenditionName.OPUS)


@dataclass(frozen=True)
class DailyPlays:
    date: datetime.date
    plays: int
    listeners: int


@dataclass(frozen=True)
class ClipStats:
    clip_id: int
    play_count: int
    last_played_at: datetime.datetime | None
    # Distinct listeners over the whole period; an anonymous listener's identity
    # is renewed every UTC day (clips.plays), so they count once per day heard.
    listeners: int
    plays_per_day: list[DailyPlays]
    # How far listeners get (clips.listening), when asked for.
    listening: Listening | None = None


def sees_every_clip(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Curators (staff) see pending and failed clips; listeners only ready ones."""
    return bool(user and user.is_staff)


def clip_queryset(
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> QuerySet[Clip]:
    """The clips `user` may see.

    No user means every clip (admin, commands, services). Each clip's previews
    come in `previews` (one more query for a page of them), Opus first: a player
    takes the first it can play.
    """
    return _visible(
        Clip.objects.defer("search_vector").prefetch_related(
            Prefetch(
                "renditions",
                queryset=Rendition.objects.filter(name__in=PREVIEWS)
                .defer("peaks")
                .order_by("clip_id", "name"),
                to_attr="previews",
            )
        ),
        user,
    )


def _visible(
    clips: QuerySet[Clip], user: AbstractBaseUser | AnonymousUser | None
) -> QuerySet[Clip]:
    if user is not None and not sees_every_clip(user):
        return clips.filter(status=ClipStatus.READY)
    return clips


def clip_browse(
    *, user: AbstractBaseUser | AnonymousUser, search: str = "", genre: str = ""
) -> QuerySet[Clip]:
    """The listener's catalogue: the clips matching `search` (clips.catalogue.search,
    ranked on PostgreSQL), of `genre` if given. Unordered: clips.catalogue.pages
    orders a page."""
    clips = catalogue_search.search(clip_queryset(user), search)
    if genre:
        clips = clips.filter(genre=genre)
    return clips


def clip_stats(
    *, clip: Clip, days: int = STATS_DAYS, with_listening: bool = False
) -> ClipStats:
    """Totals, and plays and listeners per UTC day for the last `days` days; with
    how far listeners get if asked (one more aggregate).

    Days run oldest first. Plays counted before listeners were told apart have
    no listener and add to plays only.
    """
    # As counted now: `clip` may have been read before a play.
    play_count, last_played_at = Clip.objects.values_list(*PLAY_COUNTS).get(pk=clip.pk)
    today = timezone.now().date()
    first_day = today - datetime.timedelta(days=days - 1)
    recent = clip.plays.filter(played_at__date__gte=first_day)
    per_day = {
        row["day"]: row
        for row in recent.annotate(day=TruncDate("played_at"))
        .values("day")
        .annotate(plays=Count("id"), listeners=Count("listener", distinct=True))
    }
    no_plays = {"plays": 0, "listeners": 0}
    return ClipStats(
        clip_id=clip.pk,
        play_count=play_count,
        last_played_at=last_played_at,
        listeners=recent.aggregate(n=Count("listener", distinct=True))["n"],
        plays_per_day=[
            DailyPlays(
                date=day,
                plays=per_day.get(day, no_plays)["plays"],
                listeners=per_day.get(day, no_plays)["listeners"],
            )
            for day in (first_day + datetime.timedelta(days=n) for n in range(days))
        ],
        listening=listening.clip_listening(clip=clip) if with_listening else None,
    )


def with_waveform_peaks(clips: QuerySet[Clip]) -> QuerySet[Clip]:
    """Each clip's waveform summary as `waveform_peaks`, in the same query.

    A listing draws a waveform per clip from the rows: no file read per clip.
    None until the clip is ingested.
    """
    waveform = Rendition.objects.filter(
        clip=OuterRef("pk"), name=RenditionName.WAVEFORM
    )
    return clips.annotate(
        waveform_peaks=Subquery(waveform.values("peaks")[:1], output_field=JSONField())
    )


def clip_get(
    *, clip_id: int, user: AbstractBaseUser | AnonymousUser | None = None
) -> Clip | None:
    """The clip, if `user` may see it (no user: any clip)."""
    return _visible(Clip.objects.filter(pk=clip_id), user).first()


def clip_waveform(*, clip: Clip) -> dict | None:
    """The clip's peaks in BBC audiowaveform's JSON, or None before its ingest (or
    when the file has gone from storage)."""
    rendition = rendition_get(clip=clip, name=RenditionName.WAVEFORM)
    if rendition is None:
        return None

    def read() -> dict | None:
        try:
            with rendition.file.open("rb") as data:
                return json.loads(data.read())
        except storage.STORAGE_ERRORS as error:
            if not storage.file_missing(error):
                raise
            return None  # gone from storage: none until the clip is ingested again

    return caching.content_cached(use="waveform", digest=rendition.digest, load=read)


def clip_waveform_peaks(*, clip: Clip) -> list[int] | None:
    """The clip's peaks in full (every bucket), or None before its ingest."""
    waveform = clip_waveform(clip=clip)
    return waveform["data"] if waveform else None


def rendition_get(*, clip: Clip, name: str) -> Rendition | None:
    return clip.renditions.filter(name=name).first()


def clips_previews_stale(*, clips: QuerySet[Clip] | None = None) -> list[int]:
    """The ready clips (of `clips`) whose previews are not what today's settings,
    start and audio would make (clips.ingest.preview.recipe), or missing."""
    made = {}
    for name in PREVIEWS:
        rendition = Rendition.objects.filter(clip=OuterRef("pk"), name=name)
        made[f"made_{name}"] = Subquery(rendition.values("recipe")[:1])
    rows = (
        (Clip.objects.all() if clips is None else clips)
        .filter(status=ClipStatus.READY)
        .annotate(**made)
        .order_by("pk")
        .values_list(
            "pk", "audio_digest", "duration", "preview_start", "loudest_start", *made
        )
    )
    stale = []
    for pk, digest, duration, start, loudest, *recipes in rows.iterator(2000):
        wanted = pipeline.previews_wanted(
            audio_digest=digest,
            length=duration,
            preview_start=start,
            loudest_start=loudest,
        )
        if loudest is None or recipes != [wanted.recipes[name] for name in PREVIEWS]:
            stale.append(pk)
    return stale
