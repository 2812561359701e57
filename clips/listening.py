"""How far listeners get: each counted listen's progress, and a clip's retention.

A listener's page reports the ranges of the clip it played (seconds on the
original's timeline). They are kept for the listen the play rule counted (the same
listener and window as its Play: clips.plays), merged with what came before, so a
beacon sent twice counts once, and no progress exists without a counted play.

The stream's window (the preview's excerpt, else the whole clip) is cut into
HEARD_SLOTS slots; a listen's slots are four 60-bit integers (ListenProgress), so a
beacon is one upsert that ORs them in. A clip's retention is the share of its
listens that heard each twentieth of the window, counted in the database.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import (
    Avg,
    Case,
    Count,
    FloatField,
    OuterRef,
    QuerySet,
    Subquery,
    When,
)
from django.utils import timezone

from clips import caching, metrics
from clips.models import (
    HEARD_COLUMNS,
    HEARD_SLOTS,
    PARTS,
    SLOTS_PER_COLUMN,
    Clip,
    ClipStatus,
    Listen,
    ListenProgress,
    Play,
    Rendition,
    RenditionName,
)

# A listen heard its clip to the end when it heard this share of the window.
COMPLETE_SHARE = 0.9
_COMPLETE_SLOTS = COMPLETE_SHARE * HEARD_SLOTS

_TABLE = ListenProgress._meta.db_table


@dataclass(frozen=True)
class Window:
    """What a listener streams of a clip, on the original's timeline."""

    start: float
    seconds: float


@dataclass(frozen=True)
class Listening:
    listens: int
    completion_rate: float | None
    median_heard_seconds: float | None
    retention: list[float]


def window_keys(*, clip_id: int) -> list[str]:
    """The cache keys where a ready clip's window is kept until the clip changes,
    since every beacon asks it: to read in the rate limit's round trip."""
    return caching.clip_value_keys(f"clips:listen-window:{clip_id}", clip_id=clip_id)


def window_found(kept: list | None) -> Window | None:
    """The window read at window_keys() (None: the cache is down), if kept."""
    found = caching.clip_value_found(kept) if kept else None
    return None if found is None else Window(*found)


def window_of(
    clips: QuerySet[Clip], clip_id: int, *, kept: list | None
) -> Window | None:
    """What a listener streams of the clip, one of `clips`: the preview's excerpt
    when there is one (what the listener's page plays), else the whole clip. None
    when `clips` has no such clip. One query; a ready clip's window is then kept
    at window_keys(), under the generation read in `kept`.
    """
    preview = Rendition.objects.filter(
        clip=OuterRef("pk"), name=RenditionName.PREVIEW, excerpt_start__isnull=False
    )
    row = (
        clips.filter(pk=clip_id)
        .annotate(
            excerpt_start=Subquery(preview.values("excerpt_start")[:1]),
            excerpt_seconds=Subquery(preview.values("excerpt_duration")[:1]),
        )
        .values_list("status", "duration", "excerpt_start", "excerpt_seconds")
        .first()
    )
    if row is None:
        return None
    status, duration, start, seconds = row
    window = Window(0.0, duration) if start is None else Window(start, seconds)
    if kept and status == ClipStatus.READY:  # anyone may stream it: no user to ask
        key, generation = window_keys(clip_id=clip_id)[0], kept[1]
        caching.clip_value_keep(
            key, generation=generation, value=[window.start, window.seconds]
        )
    return window


def slots_of(heard: list[tuple[float, float]], window: Window) -> list[int]:
    """`heard` ranges as the four integers of the window's slots: each range
    clipped to the window, its ends rounded to the nearest slot."""
    bits = 0
    for start, end in heard:
        first = _slot(start, window)
        last = _slot(end, window)
        if last > first:
            bits |= ((1 << (last - first)) - 1) << first
    mask = (1 << SLOTS_PER_COLUMN) - 1
    return [
        (bits >> (SLOTS_PER_COLUMN * column)) & mask
        for column in range(len(HEARD_COLUMNS))
    ]


def _slot(seconds: float, window: Window) -> int:
    share = (seconds - window.start) / window.seconds if window.seconds > 0 else 0
    return round(min(max(share, 0.0), 1.0) * HEARD_SLOTS)


_PROGRESS_SQL = f"""
WITH counted AS (
    SELECT listen.started_at FROM {Listen._meta.db_table} AS listen
    WHERE listen.clip_id = %(clip)s AND listen.listener = %(listener)s
        AND listen.started_at > %(closed)s
        AND EXISTS (
            SELECT 1 FROM {Play._meta.db_table} AS play
            WHERE play.clip_id = listen.clip_id AND play.listener = listen.listener
                AND play.played_at = listen.started_at
        )
)
INSERT INTO {_TABLE} AS progress (
    clip_id, listener, started_at, window_start, window_seconds, ends_reported,
    {", ".join(HEARD_COLUMNS)})
SELECT %(clip)s, %(listener)s, started_at, %(window_start)s, %(window_seconds)s,
    %(ended)s, {", ".join(f"%({name})s" for name in HEARD_COLUMNS)}
FROM counted WHERE true
ON CONFLICT (clip_id, listener, started_at) DO UPDATE SET
    ends_reported = progress.ends_reported + excluded.ends_reported,
    {", ".join(f"{name} = progress.{name} | excluded.{name}" for name in HEARD_COLUMNS)}
RETURNING ends_reported, slots_heard
"""  # noqa: S608 (table names from our models; values are bound parameters)


def progress_record(
    *,
    window: Window,
    clip_id: int,
    listener: str,
    heard: list[tuple[float, float]],
    ended: bool = False,
) -> bool:
    """Add `heard` to this listener's counted listen of the clip, if one is open.

    One statement on both databases (an upsert with a bitwise OR), so beacons
    that cross, or come twice, merge without a lock held between requests. False
    when the listener has no counted listen open: nothing is written. The first
    report that says the listen `ended` puts its share heard in the histogram
    (the upsert counts such reports, under the row's lock).
    """
    now = timezone.now()
    closed = now - datetime.timedelta(seconds=settings.CLIPS_LISTEN_WINDOW_SECONDS)
    params = {
        "clip": clip_id,
        "listener": listener,
        "closed": closed,
        "window_start": window.start,
        "window_seconds": window.seconds,
        "ended": int(ended),
        **dict(zip(HEARD_COLUMNS, slots_of(heard, window), strict=True)),
    }
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return False
    ends, slots = row
    if ended and ends == 1:
        metrics.LISTEN_HEARD_RATIO.observe(slots / HEARD_SLOTS)
    return True


def clip_listening(*, clip: Clip) -> Listening:
    """The clip's listens with progress, the share that heard COMPLETE_SHARE of
    their window, the median seconds heard and the retention curve (PARTS points).

    The database groups the clip's rows by what they heard (the parts and the
    number of slots it keeps on each row): listens that heard the same come as
    one group, so what comes back is small however many listens there are.
    """
    groups = list(
        ListenProgress.objects.filter(clip=clip)
        .values_list("parts_heard", "slots_heard", "window_seconds")
        .annotate(listens=Count("*"))
        .order_by()
    )
    listens = sum(group[-1] for group in groups)
    if not listens:
        return Listening(0, None, None, [0.0] * PARTS)
    complete = sum(count for _, slots, _, count in groups if slots >= _COMPLETE_SLOTS)
    heard = sorted(
        (slots * seconds / HEARD_SLOTS, count) for _, slots, seconds, count in groups
    )
    return Listening(
        listens=listens,
        completion_rate=round(complete / listens, 4),
        median_heard_seconds=round(_median(heard, listens), 2),
        retention=[
            round(sum(n for parts, _, _, n in groups if parts >> part & 1) / listens, 4)
            for part in range(PARTS)
        ],
    )


def _median(values: list[tuple[float, int]], total: int) -> float:
    """The median of sorted (value, how many times) pairs."""
    middle = [(total - 1) // 2, total // 2]
    found = []
    seen = 0
    for value, count in values:
        while middle and middle[0] < seen + count:
            found.append(value)
            middle.pop(0)
        seen += count
    return sum(found) / 2


def with_completion(clips: QuerySet[Clip]) -> QuerySet[Clip]:
    """Each clip's completion rate as `listen_completion` (None without progress),
    in the same query: a subquery per clip listed, so a list may sort by it."""
    rate = (
        ListenProgress.objects.filter(clip=OuterRef("pk"))
        .values("clip")
        .annotate(
            rate=Avg(
                Case(When(slots_heard__gte=_COMPLETE_SLOTS, then=1.0), default=0.0),
                output_field=FloatField(),
            )
        )
        .values("rate")
    )
    return clips.annotate(listen_completion=Subquery(rate, output_field=FloatField()))
