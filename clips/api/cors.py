"""Who may use the API from a web page on another origin.

django-cors-headers does the protocol. Its settings (CORS_URLS_REGEX: which paths
speak CORS at all; CORS_ALLOWED_ORIGINS: who may also write) cannot say "any origin
may read", so this receiver of its check_request_enabled signal does: the catalogue,
a clip, its stats, its stream and the schema are public, and a player on any site
may use them. The library answers such an origin with its own name and
`Vary: Origin` (it gives `*` only when every origin may do everything).
"""

import re

from django.conf import settings
from django.http import HttpRequest

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A listener's progress, reported by a player wherever it plays (as it streams).
LISTENS = re.compile(r"^/api/v1/clips/[0-9]+/listens$")


def cors_allow_public_reads(sender, request: HttpRequest, **kwargs) -> bool:
    """True for a read of the public API or a listen's progress, or a preflight
    asking for one."""
    if not re.match(settings.CORS_URLS_REGEX, request.path_info):
        return False
    method = request.method
    if method == "OPTIONS":
        # A preflight asks for the method of the request that would follow.
        method = request.headers.get("Access-Control-Request-Method", method)
    return method in READ_METHODS or (
        method == "POST" and bool(LISTENS.match(request.path_info))
    )
