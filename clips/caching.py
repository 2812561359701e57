"""The shared cache: anonymous catalogue answers, waveforms, what hot paths keep of
a clip until it changes, and carrying on without Redis.

The default cache is Redis when REDIS_URL is set (clips_project/settings.py), so
every worker and replica shares these answers and the rate limits
(clips/api/throttling.py). When Redis cannot be reached the service carries on
without it: the rate limits let requests through and answers come from the
database. Each such request counts in clips_cache_unavailable_total; each process
logs it at most once a minute for each use.
"""

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.http import HttpRequest
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from clips import metrics

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Redis down, refusing, slower than its socket timeouts, or unable to take writes
# (full, or a replica after a failover). Any other error is a bug: a 500 to see.
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)


# While Redis is down every request goes on without it, hundreds a second under
# load: the counter has each, the log one line per use and process this often.
LOG_INTERVAL_SECONDS = 60
_last_logged: dict[str, float] = {}
_not_logged: Counter[str] = Counter()
_log_lock = threading.Lock()  # gunicorn's threads share a worker's


def cache_unavailable(
    request: HttpRequest | None, *, use: str, error: Exception
) -> None:
    """Count a request that went on without the cache; log it, once a minute."""
    metrics.CACHE_UNAVAILABLE.labels(use=use).inc()
    now = time.monotonic()
    with _log_lock:
        last = _last_logged.get(use)
        if last is not None and now - last < LOG_INTERVAL_SECONDS:
            _not_logged[use] += 1
            return
        _last_logged[use] = now
        since = _not_logged.pop(use, 0)
    logger.warning(
        "Cache unavailable (%s): %s: %s: %s%s",
        use,
        f"{request.method} {request.path}" if request else "-",
        type(error).__name__,
        " ".join(str(error).split()),
        f" ({since} more since the last line)" if since else "",
    )


@dataclass(frozen=True)
class Counted:
    """A request counted in a window of the shared cache."""

    count: int  # its number in the window
    seconds_left: float  # until the window closes


def count_and_read(
    *, counter: str | None, window: int, keys: Sequence[str]
) -> tuple[Counted | None, list[Any]]:
    """One more request in `counter`'s window (this one opens it if none is open),
    and the values of `keys` (None where missing), in one round trip to Redis.

    For the hot paths (a stream decision): Django's cache API would take one round
    trip for the read and two for the count (EXISTS, then INCRBY). Raises UNAVAILABLE.
    """
    default = caches["default"]
    if not isinstance(default, RedisCache):  # no REDIS_URL: this process's memory
        counted = _counted_here(default, counter, window) if counter else None
        found = default.get_many(keys)
        return counted, [found.get(key) for key in keys]
    # Django's RedisCache has no pipeline; its client, keys and serializer do.
    # Its get_client() makes a new client each time (a third of a millisecond
    # here): the first is kept on the cache object, one per thread.
    client = getattr(default, "_clips_client", None)
    if client is None:
        client = default._clips_client = default._cache.get_client(write=True)
    pipeline = client.pipeline(transaction=True)  # one MULTI ... EXEC
    if counter:
        key = default.make_and_validate_key(counter)
        pipeline.set(key, 0, ex=window, nx=True).incr(key).pttl(key)
    if keys:
        pipeline.mget([default.make_and_validate_key(key) for key in keys])
    results = pipeline.execute()
    counted = None
    if counter:
        _, count, milliseconds = results[:3]
        counted = Counted(count=count, seconds_left=max(milliseconds, 0) / 1000)
    loads = default._cache._serializer.loads
    values = results[-1] if keys else []
    return counted, [None if value is None else loads(value) for value in values]


def _counted_here(local, counter: str, window: int) -> Counted:
    opened_key = f"{counter}:opened"
    if local.add(counter, 0, window):
        local.set(opened_key, time.time(), window)
    try:
        count = local.incr(counter)
    except ValueError:  # the window closed since add()
        local.set(counter, count := 1, window)
    opened = local.get(opened_key) or time.time()
    return Counted(count=count, seconds_left=max(opened + window - time.time(), 0))


# --- what is kept of a clip until it changes ------------------------------------
#
# A hot path (a stream decision, a progress beacon) reads what it needs of a clip
# from the cache, in the round trip of its rate limit, not from the database. Such
# values are kept under the clip's generation, a counter that every change to the
# clip or its renditions bumps (clips.signals), at once and again once the change
# commits: a value read from the database before a commit is kept under the
# generation read first, so it is never taken after the commit.

# Each value lives this long at most: a bump lost while Redis was away (and kept
# its data) is forgotten within it.
CLIP_VALUE_SECONDS = 300


def clip_value_keys(key: str, *, clip_id: int) -> list[str]:
    """The keys to read (count_and_read) for clip_value_found(): the value kept at
    `key`, then the clip's generation."""
    return [key, _generation_key(clip_id)]


def clip_value_found(values: list) -> Any | None:
    """The value read at clip_value_keys(), if kept under the clip's generation now."""
    kept, generation = values
    if not kept or kept["generation"] != (generation or 0):
        return None
    return kept["value"]


def clip_value_keep(key: str, *, generation: int | None, value: Any) -> None:
    """Keep a value of the clip read from the database after `generation` (as
    read at clip_value_keys()) was."""
    with suppress(UNAVAILABLE):  # the read before failed too, and counted
        cache.set(
            key, {"generation": generation or 0, "value": value}, CLIP_VALUE_SECONDS
        )


def clip_changed(*, clip_id: int) -> None:
    """Forget what is kept of the clip now and once the change commits."""
    _generation_bump(clip_id)
    transaction.on_commit(lambda: _generation_bump(clip_id))


def _generation_key(clip_id: int) -> str:
    # Named when streams alone kept values; a new name would let replicas of the
    # last release, during a rolling deploy, bump a key the new ones never read.
    return f"clips:stream-generation:{clip_id}"


def _generation_bump(clip_id: int) -> None:
    key = _generation_key(clip_id)
    try:
        try:
            cache.incr(key)
        except ValueError:  # none yet (or Redis restarted: its values went too)
            cache.set(key, 1, None)
    except UNAVAILABLE as error:
        cache_unavailable(None, use="stream", error=error)


# A value named by the digest of what it was made from never goes stale.
CONTENT_CACHE_SECONDS = 24 * 3600


def content_cached(*, use: str, digest: str, load: Callable[[], T]) -> T:
    """What load() reads from storage, kept in the shared cache under its digest.

    For what every page view would read again: the clip page's waveform is a
    GET to the bucket otherwise. Without Redis, load() each time.
    """
    key = f"clips:{use}:{digest}"
    try:
        value = cache.get(key)
    except UNAVAILABLE as error:
        cache_unavailable(None, use=use, error=error)
        return load()
    if value is None:
        value = load()
        try:
            cache.set(key, value, CONTENT_CACHE_SECONDS)
        except UNAVAILABLE as error:
            cache_unavailable(None, use=use, error=error)
    return value


def catalogue_cached(request: Request, page: Callable[[], Response]) -> Response:
    """An anonymous catalogue answer (the list or a clip) from the cache, else page().

    They are most of the traffic and the same for every listener; their play
    counts may lag by CLIPS_LIST_CACHE_SECONDS (the stats endpoint does not).
    """
    seconds = settings.CLIPS_LIST_CACHE_SECONDS
    if not seconds or request.user.is_authenticated:
        return page()
    # The body holds absolute URLs, so the host and scheme are part of the key.
    url = request.build_absolute_uri().encode()
    key = f"clips:api:{hashlib.sha256(url).hexdigest()}"
    try:
        data = cache.get(key)
    except UNAVAILABLE as error:
        cache_unavailable(request, use="catalogue", error=error)
        return page()
    if data is not None:
        return Response(data)
    response = page()
    if response.status_code == status.HTTP_200_OK:
        try:
            cache.set(key, response.data, seconds)
        except UNAVAILABLE as error:
            cache_unavailable(request, use="catalogue", error=error)
    return response
