"""Rate limits for streaming and writes; rates in settings.CLIPS_THROTTLE_RATES."""

from django.conf import settings
from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle


class ClipsRateThrottle(SimpleRateThrottle):
    """Per user when signed in, else per client address.

    The rate is read from settings on every request (DRF's own throttles freeze
    it at import), so an environment change or a test's override applies.
    """

    def get_rate(self) -> str | None:
        return settings.CLIPS_THROTTLE_RATES.get(self.scope) or None

    def get_cache_key(self, request: HttpRequest, view) -> str:
        user = getattr(request, "user", None)
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class StreamThrottle(ClipsRateThrottle):
    scope = "stream"


class ClipWriteThrottle(ClipsRateThrottle):
    scope = "clip_write"

    def allow_request(self, request: HttpRequest, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
