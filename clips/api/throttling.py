"""Rate limits for streaming and writes; rates in settings.CLIPS_THROTTLE_RATES.

The counts live in the default cache: Redis with REDIS_URL, so every worker and
replica shares one limit; an unreachable Redis lets requests through
(clips.caching).
"""

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from clips import caching


class ClipsRateThrottle(SimpleRateThrottle):
    """N requests a window, per user when signed in, else per client address.

    A window opens with a client's first request and lasts the rate's period.
    Its count is one atomic increment, so concurrent requests on all workers are
    held to one limit; DRF's own throttle reads a list of times and writes it back,
    and concurrent requests overwrite each other's (measured on Redis: 48 of 50
    requests, 32 at a time, passed a 10/min limit). The price: a client may fit N
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
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        try:
            if self._count(key) <= self.num_requests:
                return True
            opened = self.cache.get(f"{key}:opened")
        except caching.UNAVAILABLE as error:
            caching.cache_unavailable(request, use="rate_limit", error=error)
            return True
        self.retry_at = (opened or self.timer()) + self.duration
        return False

    def _count(self, key: str) -> int:
        """This request's number in its window, opening one if none is open."""
        try:
            count = self.cache.incr(key)
        except ValueError:  # no open window
            if self.cache.add(key, 1, self.duration):
                self.cache.set(f"{key}:opened", self.timer(), self.duration)
                return 1
            count = self.cache.incr(key)  # another request opened it first
        if count == 1:
            # The window expired between RedisCache.incr()'s EXISTS and INCR, and
            # INCR made a key that never expires: give it its window.
            self.cache.touch(key, self.duration)
        return count

    def wait(self) -> float:
        """Seconds until the window closes (after allow_request returned False)."""
        return max(self.retry_at - self.timer(), 1.0)


class StreamThrottle(ClipsRateThrottle):
    scope = "stream"


class ClipWriteThrottle(ClipsRateThrottle):
    scope = "clip_write"

    def allow_request(self, request: HttpRequest, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
