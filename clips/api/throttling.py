"""Rate limits for streaming and writes; rates in settings.CLIPS_THROTTLE_RATES.

The counts live in the default cache: Redis with REDIS_URL, so every worker and
replica shares one limit; an unreachable Redis lets requests through
(clips.caching).
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from clips import caching, plays


class ClipsRateThrottle(SimpleRateThrottle):
    """N requests a window, per user when signed in, else per client address.

    A window opens with a client's first request and lasts the rate's period.
    Its count is one atomic increment (clips.caching.count_and_read: one round
    trip), so concurrent requests on all workers are held to one limit; DRF's own
    throttle reads a list of times and writes it back, and concurrent requests
    overwrite each other's (measured on Redis: 48 of 50 requests, 32 at a time,
    passed a 10/min limit). The price: a client may fit N
    at a window's end and N more at the next one's start.

    The rate is read from settings on every request (DRF's own throttles freeze
    it at import), so an environment change or a test's override applies.
    """

    def get_rate(self) -> str | None:
        return settings.CLIPS_THROTTLE_RATES.get(self.scope) or None

    def get_cache_key(self, request: HttpRequest, view) -> str:
        user = getattr(request, "user", None)
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: HttpRequest, view) -> bool:
        allowed, _ = self.allow_and_read(request, view, keys=[])
        return allowed

    def allow_and_read(
        self, request: HttpRequest, view=None, *, keys: Sequence[str]
    ) -> tuple[bool, list[Any] | None]:
        """Whether the request is within the limit, and the shared cache's values
        of `keys`, read in the same round trip; None when the cache is down."""
        key = self.get_cache_key(request, view) if self.rate else None
        try:
            counted, values = caching.count_and_read(
                counter=key, window=self.duration or 0, keys=keys
            )
        except caching.UNAVAILABLE as error:
            caching.cache_unavailable(request, use="rate_limit", error=error)
            return True, None
        if counted is None or counted.count <= self.num_requests:
            return True, values
        self.retry_after = counted.seconds_left
        return False, values

    def wait(self) -> float:
        """Seconds until the window closes (after allow_request returned False)."""
        return max(self.retry_after, 1.0)


class StreamThrottle(ClipsRateThrottle):
    scope = "stream"


class ClipWriteThrottle(ClipsRateThrottle):
    scope = "clip_write"

    def allow_request(self, request: HttpRequest, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class ListenThrottle(ClipsRateThrottle):
    """Progress reports, per listener (clips.plays.listener_of): a page sends one
    every few seconds while it plays."""

    scope = "listen"

    def get_cache_key(self, request: HttpRequest, view) -> str:
        ident = plays.listener_of(request) or f"staff:{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
