"""A play is a listen: who the listener is, which requests listen, and counting.

The rule (docs/plays.md, "What counts as a play"): every request of one listener
for one clip within CLIPS_LISTEN_WINDOW_SECONDS counts once. A listener is the
signed-in user, otherwise a keyed hash of the client address and User-Agent whose
key is renewed every UTC day. Since a client chooses its User-Agent, anonymous
listeners behind one address count at most CLIPS_PLAYS_PER_ADDRESS times per clip
and window. Staff never count (admin previews); nor do HEAD, 304, 412, 416, 429,
seeks (a response not starting at byte 0) and probes (a few bytes).

The state lives in the database (Listen rows, one per open window, and
AddressWindow rows, one per address and clip), so every worker and every replica
share it and a restart keeps it; rows are deleted once their window has closed.
"""

import datetime
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from contextlib import suppress

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from clips import caching, metrics
from clips.models import AddressWindow, Clip, Listen, ListenerKey, Play

# A response that starts at byte 0 but carries fewer bytes than this (and not the
# whole file) only probes: Safari's "bytes=0-1", a player sniffing the header.
PROBE_MAX_BYTES = 4096
# Each process deletes closed listen windows at most this often.
SWEEP_INTERVAL_SECONDS = 60

ANONYMOUS = "anon:"

_keys: dict[datetime.date, bytes] = {}
_last_sweep = 0.0


def listener_of(request: HttpRequest) -> str | None:
    """Who is listening: "user:<id>", a daily keyed hash, or None for staff."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return None if user.is_staff else f"user:{user.pk}"
    agent = request.headers.get("User-Agent", "")
    return ANONYMOUS + _keyed_hash(f"{_client_address(request)}\n{agent}")


def address_of(request: HttpRequest) -> str:
    """The client's address (an IPv6 client's /64) as a daily keyed hash.

    What anonymous listeners behind one address share, and what the admin's
    sign-in locks out (clips.logins); like the listener, it stores no address.
    """
    address = _client_address(request)
    with suppress(ValueError):
        ip = ipaddress.ip_address(address)
        if ip.version == 6:
            # A host or household is given a /64 and may use any address in it;
            # an IPv4 client on a dual-stack socket is its IPv4 address.
            network = ipaddress.ip_network(f"{ip}/64", strict=False)
            address = str(ip.ipv4_mapped or network)
    return "addr:" + _keyed_hash(address)


def _client_address(request: HttpRequest) -> str:
    """The client address as the rate limits take it (NUM_PROXIES), never stored."""
    return BaseThrottle().get_ident(request) or ""


def _keyed_hash(value: str) -> str:
    key = listener_key(day=timezone.now().date())
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:40]


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


def listening_key(*, clip_id: int, listener: str) -> str:
    """The shared cache's note that this listener's listen of the clip is counted:
    its value is when the window closes. A stream reads it in its one round trip
    (clips.streaming.views) and then needs no statement to know the play is not
    new; without the note (Redis restarted) the database decides, as exactly."""
    return f"clips:listening:{clip_id}:{listener}"


def stream_play_record(
    request: HttpRequest,
    *,
    clip: Clip,
    first_byte: int | None,
    length: int | None,
    size: int | None,
    listener: str | None,
    listening: float | None = None,
) -> float:
    """Count a stream GET as a play if it starts a listen not counted yet.

    listener: listener_of(request). listening: the value at listening_key(), if read.
    Returns until when (a Unix time) the same request of the same listener would
    count nothing: math.inf for a request that starts no listen, 0 when unknown.
    """
    if not is_listen(first_byte=first_byte, length=length, size=size):
        return math.inf
    if listener is None:
        return 0
    if listening is not None and listening > time.time():
        return listening  # counted in this window already
    # A signed-in listener is one whatever the address; anonymous ones, told apart
    # by a User-Agent of their choosing, share their address's cap.
    address = address_of(request) if listener.startswith(ANONYMOUS) else None
    _, opened = _play_claim(clip=clip, listener=listener, address=address)
    if opened is None:
        return 0
    return _listening_note(clip_id=clip.pk, listener=listener, opened=opened)


def _listening_note(*, clip_id: int, listener: str, opened: datetime.datetime) -> float:
    """Note until when the listener's window, opened then, is open; returns that."""
    # A second early, so that the note never outlives the window the database has.
    closes = opened.timestamp() + settings.CLIPS_LISTEN_WINDOW_SECONDS - 1
    seconds = int(closes - time.time())
    if seconds <= 0:
        return 0
    key = listening_key(clip_id=clip_id, listener=listener)
    try:
        cache.set(key, closes, seconds)
    except caching.UNAVAILABLE as error:
        caching.cache_unavailable(None, use="stream", error=error)
    return closes


def play_record(*, clip: Clip, listener: str, address: str | None = None) -> bool:
    """Count a play unless this listener's window on this clip is still open, or
    (with an address) the address's plays of this clip in its window reached
    CLIPS_PLAYS_PER_ADDRESS; 0 turns that cap off.

    True when counted: a Play row, play_count + 1 and the Prometheus counter.
    Safe under concurrency: the unique (clip, listener) row decides, so 200
    simultaneous requests of one listener count once; the unique (clip, address)
    row holds the count of its window, so 200 listeners of one address count the
    cap, not more nor fewer.
    """
    return _play_claim(clip=clip, listener=listener, address=address)[0]


def _play_claim(
    *, clip: Clip, listener: str, address: str | None
) -> tuple[bool, datetime.datetime | None]:
    """(counted: a play, when the listener's open window opened: now if this
    request opened it)."""
    now = timezone.now()
    closed = now - datetime.timedelta(seconds=settings.CLIPS_LISTEN_WINDOW_SECONDS)
    adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores them
    cap = settings.CLIPS_PLAYS_PER_ADDRESS if address else 0
    params = {
        "clip": clip.pk,
        "listener": listener,
        "address": address,
        "cap": cap,
        "now": adapt(now),
        "closed": adapt(closed),
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PLAY_RECORD_CAPPED_SQL if cap else _PLAY_RECORD_SQL, params)
            claimed, counted, opened = cursor.fetchone()
    else:
        claimed, counted, opened = _play_record_portable(
            params, clip_id=clip.pk, now=now, capped=bool(cap)
        )
    if counted:
        metrics.STREAMS.labels(clip_id=str(clip.pk), genre=clip.genre).inc()
    elif claimed:  # a listener of its own, but its address had the cap
        metrics.LISTENS_OVER_ADDRESS_CAP.inc()
    _sweep_closed_windows(closed=closed)
    return counted, now if claimed else opened


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


def _address_claim_sql(values: str) -> str:
    """One more play in the address's window on the clip, unless it has the cap.

    The first play opens the window (or reopens a closed one). Every listener of
    one address, on any worker or replica, updates its one (clip, address) row:
    ON CONFLICT locks it and checks WHERE against the latest committed count, so
    concurrent listeners queue on it and exactly the cap count.
    """
    return f"""
INSERT INTO {AddressWindow._meta.db_table} AS counted
    (clip_id, address, started_at, plays)
{values}
ON CONFLICT (clip_id, address) DO UPDATE SET
    plays = CASE WHEN counted.started_at <= %(closed)s THEN 1
        ELSE counted.plays + 1 END,
    started_at = CASE WHEN counted.started_at <= %(closed)s
        THEN EXCLUDED.started_at ELSE counted.started_at END
WHERE counted.started_at <= %(closed)s OR counted.plays < %(cap)s
RETURNING clip_id
"""


def _play_record_sql(*, capped: bool) -> str:
    """On PostgreSQL the whole play is one statement, one round trip: the window,
    (capped) the address's count, the Play row and the total (bench/results.md
    measures it). It answers (claimed the window, counted the play, when the
    window already open opened)."""
    counts = "address" if capped else "claim"
    address = "SELECT clip_id, %(address)s, %(now)s, 1 FROM claim"
    return f"""
WITH claim AS ({_LISTEN_CLAIM_SQL}),
{f"address AS ({_address_claim_sql(address)})," if capped else ""}
play AS (
    INSERT INTO {Play._meta.db_table} (clip_id, listener, played_at)
    SELECT clip_id, %(listener)s, %(now)s FROM {counts}
),
summed AS (
    UPDATE {Clip._meta.db_table}
    SET play_count = play_count + 1, last_played_at = %(now)s
    WHERE id IN (SELECT clip_id FROM {counts})
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM claim), EXISTS (SELECT 1 FROM summed),
    -- The window already open: the statement's snapshot has the row as it was.
    (SELECT started_at FROM {Listen._meta.db_table}
     WHERE clip_id = %(clip)s AND listener = %(listener)s AND started_at > %(closed)s)
"""  # noqa: S608 (table names from our models; values are bound parameters)


_PLAY_RECORD_SQL = _play_record_sql(capped=False)
_PLAY_RECORD_CAPPED_SQL = _play_record_sql(capped=True)
_ADDRESS_CLAIM_SQL = _address_claim_sql("VALUES (%(clip)s, %(address)s, %(now)s, 1)")


@transaction.atomic
def _play_record_portable(
    params: dict, *, clip_id: int, now: datetime.datetime, capped: bool
) -> tuple[bool, bool, datetime.datetime | None]:
    """The same for SQLite (3.35+ has upsert with RETURNING); writes serialise."""
    with connection.cursor() as cursor:
        cursor.execute(_LISTEN_CLAIM_SQL, params)
        if cursor.fetchone() is None:
            listens = Listen.objects.filter(
                clip_id=clip_id, listener=params["listener"]
            )
            return False, False, listens.values_list("started_at", flat=True).first()
        if capped:
            cursor.execute(_ADDRESS_CLAIM_SQL, params)
            if cursor.fetchone() is None:
                return True, False, None
    Clip.objects.filter(pk=clip_id).update(
        play_count=F("play_count") + 1, last_played_at=now
    )
    Play.objects.create(clip_id=clip_id, listener=params["listener"], played_at=now)
    return True, True, None


def _sweep_closed_windows(*, closed: datetime.datetime) -> None:
    """Delete closed windows now and then, so Listen never grows past the open ones."""
    global _last_sweep
    if time.monotonic() - _last_sweep < SWEEP_INTERVAL_SECONDS:
        return
    _last_sweep = time.monotonic()
    Listen.objects.filter(started_at__lte=closed).delete()
    AddressWindow.objects.filter(started_at__lte=closed).delete()
