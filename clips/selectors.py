"""Reads: the querysets and figures the API, admin and pages show."""

import datetime
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from clips.models import Clip, PlayTotal

STATS_DAYS = 30
# A listener's search is a few words; more would only make a slower query.
SEARCH_MAX_TERMS = 8


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


def clip_queryset() -> QuerySet[Clip]:
    """Clips with their play_count and last_played_at, in one query."""
    return Clip.objects.annotate(
        play_count=Coalesce(F("play_total__play_count"), Value(0)),
        last_played_at=F("play_total__last_played_at"),
    )


def clip_browse(*, search: str = "", genre: str = "") -> QuerySet[Clip]:
    """The listener's catalogue: every word of `search` in title or description."""
    clips = clip_queryset()
    for term in search.split()[:SEARCH_MAX_TERMS]:
        clips = clips.filter(Q(title__icontains=term) | Q(description__icontains=term))
    if genre:
        clips = clips.filter(genre=genre)
    return clips


def clip_stats(*, clip: Clip, days: int = STATS_DAYS) -> ClipStats:
    """Totals, and plays and listeners per UTC day for the last `days` days.

    Days run oldest first. Plays counted before listeners were told apart have
    no listener and add to plays only.
    """
    total = PlayTotal.objects.filter(clip=clip).first()
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
        play_count=total.play_count if total else 0,
        last_played_at=total.last_played_at if total else None,
        listeners=recent.aggregate(n=Count("listener", distinct=True))["n"],
        plays_per_day=[
            DailyPlays(
                date=day,
                plays=per_day.get(day, no_plays)["plays"],
                listeners=per_day.get(day, no_plays)["listeners"],
            )
            for day in (first_day + datetime.timedelta(days=n) for n in range(days))
        ],
    )


def clip_get(*, clip_id: int) -> Clip | None:
    return Clip.objects.filter(pk=clip_id).first()
