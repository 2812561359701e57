"""A play is a listen: who the listener is, which requests listen, and counting.

The rule (README, "What counts as a play"): every request of one listener for one
clip within CLIPS_LISTEN_WINDOW_SECONDS counts once. A listener is the signed-in
user, otherwise a keyed hash of the client address and User-Agent whose key is
renewed every UTC day. Staff never count (admin previews); nor do HEAD, 304, 412,
416, 429, seeks (a response not starting at byte 0) and probes (a few bytes).

The state lives in the database (Listen rows, one per open window), so every
worker and every replica share it and a restart keeps it; rows are deleted once
their window has closed.
"""

import datetime
import hashlib
import hmac
import secrets
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from clips import metrics
from clips.models import Clip, Listen, ListenerKey, Play, PlayTotal

# A response that starts at byte 0 but carries fewer bytes than this (and not the
# whole file) only probes: Safari's "bytes=0-1", a player sniffing the header.
PROBE_MAX_BYTES = 4096
# Each process deletes closed listen windows at most this often.
SWEEP_INTERVAL_SECONDS = 60

_keys: dict[datetime.date, bytes] = {}
_last_sweep = 0.0


def listener_of(request: HttpRequest) -> str | None:
    """Who is listening: "user:<id>", a daily keyed hash, or None for staff."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return None if user.is_staff else f"user:{user.pk}"
    # The client address as the rate limits take it (NUM_PROXIES), never stored.
    address = BaseThrottle().get_ident(request) or ""
    agent = request.headers.get("User-Agent", "")
    key = listener_key(day=timezone.now().date())
    digest = hmac.new(key, f"{address}\n{agent}".encode(), hashlib.sha256)
    return "anon:" + digest.hexdigest()[:40]


def listener_key(*, day: datetime.date) -> bytes:
    """The day's random key, made once by whichever process needs it first."""
    key = _keys.get(day)
    if key is None:
        # One INSERT that loses quietly to another process's: no read-then-write
        # transaction, which SQLite would refuse under concurrent writers.
        candidate = ListenerKey(day=day, key=secrets.token_hex(32))
        ListenerKey.objects.bulk_create([candidate], ignore_conflicts=True)
        ListenerKey.objects.filter(day__lt=day).delete()
        _keys.clear()
        _keys[day] = key = bytes.fromhex(ListenerKey.objects.get(day=day).key)
    return key


def is_listen(*, first_byte: int | None, length: int | None, size: int | None) -> bool:
    """Whether a GET's answer can start a listen: from byte 0, more than a probe.

    first_byte is None when the start is unknown (a suffix range on a remote clip);
    length and size are None when unknown (a remote body of unknown length).
    """
    if first_byte != 0:
        return False
    if length is None or length >= PROBE_MAX_BYTES:
        return True
    return size is not None and length >= size  # a small file, sent whole


def stream_play_record(
    request: HttpRequest,
    *,
    clip: Clip,
    first_byte: int | None,
    length: int | None,
    size: int | None,
) -> bool:
    """Count a stream GET as a play if it starts a listen not counted yet."""
    if not is_listen(first_byte=first_byte, length=length, size=size):
        return False
    listener = listener_of(request)
    return listener is not None and play_record(clip=clip, listener=listener)


def play_record(*, clip: Clip, listener: str) -> bool:
    """Count a play unless this listener's window on this clip is still open.

    True when counted: a Play row, play_count + 1 and the Prometheus counter.
    Safe under concurrency: the unique (clip, listener) row decides, so 200
    simultaneous requests of one listener count once.
    """
    now = timezone.now()
    closed = now - datetime.timedelta(seconds=settings.CLIPS_LISTEN_WINDOW_SECONDS)
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores them
    params = {
        "clip": clip.pk,
        "listener": listener,
        "now": adapt(now),
        "closed": adapt(closed),
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PLAY_RECORD_SQL, params)
            counted = cursor.fetchone() is not None
    else:
        counted = _play_record_portable(params, clip_id=clip.pk, now=now)
    if counted:
        metrics.STREAMS.labels(clip_id=str(clip.pk), genre=clip.genre).inc()
    _sweep_closed_windows(closed=closed)
    return counted


# Opens the window (or reopens a closed one); RETURNING gives a row only then.
# While the window is open, NOT EXISTS makes a repeated listen a plain read that
# locks nothing (bench/results.md). Under concurrency, whatever the read misses
# falls through to ON CONFLICT, which waits for the other insert and re-checks
# WHERE against the row it committed: exactly one request of a listener wins.
_LISTEN_CLAIM_SQL = f"""
INSERT INTO {Listen._meta.db_table} AS listen (clip_id, listener, started_at)
SELECT %(clip)s, %(listener)s, %(now)s
WHERE NOT EXISTS (
    SELECT 1 FROM {Listen._meta.db_table}
    WHERE clip_id = %(clip)s AND listener = %(listener)s AND started_at > %(closed)s
)
ON CONFLICT (clip_id, listener) DO UPDATE SET started_at = EXCLUDED.started_at
WHERE listen.started_at <= %(closed)s
RETURNING clip_id
"""  # noqa: S608 (table names from our models; values are bound parameters)

# On PostgreSQL the whole play is one statement, one round trip: the window, the
# Play row and the total (bench/results.md measures it).
_PLAY_RECORD_SQL = f"""
WITH claim AS ({_LISTEN_CLAIM_SQL}),
play AS (
    INSERT INTO {Play._meta.db_table} (clip_id, listener, played_at)
    SELECT clip_id, %(listener)s, %(now)s FROM claim
)
INSERT INTO {PlayTotal._meta.db_table} AS total (clip_id, play_count, last_played_at)
SELECT clip_id, 1, %(now)s FROM claim
ON CONFLICT (clip_id) DO UPDATE
SET play_count = total.play_count + 1, last_played_at = EXCLUDED.last_played_at
RETURNING clip_id
"""  # noqa: S608 (table names from our models; values are bound parameters)


@transaction.atomic
def _play_record_portable(
    params: dict, *, clip_id: int, now: datetime.datetime
) -> bool:
    """The same for SQLite (3.35+ has upsert with RETURNING); writes serialise."""
    with connection.cursor() as cursor:
        cursor.execute(_LISTEN_CLAIM_SQL, params)
        if cursor.fetchone() is None:
            return False
    total, _ = PlayTotal.objects.get_or_create(clip_id=clip_id)
    PlayTotal.objects.filter(pk=total.pk).update(
        play_count=F("play_count") + 1, last_played_at=now
    )
    Play.objects.create(clip_id=clip_id, listener=params["listener"], played_at=now)
    return True


def _sweep_closed_windows(*, closed: datetime.datetime) -> None:
    """Delete closed windows now and then, so Listen never grows past the open ones."""
    global _last_sweep
    if time.monotonic() - _last_sweep < SWEEP_INTERVAL_SECONDS:
        return
    _last_sweep = time.monotonic()
    Listen.objects.filter(started_at__lte=closed).delete()
