"""Signing in to the admin: the hooks django-axes calls (clips_project/settings.py,
AXES_*). Failed passwords from one client lock that client out for a while.
"""

import hashlib
import ipaddress
import math

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clips import plays


def login_address(request: HttpRequest) -> str:
    """Who is signing in, as axes keeps and compares it (AXES_CLIENT_IP_CALLABLE).

    The client address as the rate limits and the play rule take it: behind nginx
    the client's (NUM_PROXIES), not nginx's; an IPv6 client's /64. axes keeps it
    in an IP address column, so it gets the day's keyed hash of the address
    (plays.address_of) shaped as an IPv6 address: no address is stored here either.
    """
    digest = hashlib.sha256(plays.address_of(request).encode()).digest()
    return str(ipaddress.IPv6Address(digest[:16]))


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The answer to a sign-in while its client is locked out (AXES_LOCKOUT_CALLABLE):
    429, with when to try again in words and in Retry-After.

    Each try while locked out starts the cool-off again, so it is the whole of it.
    """
    seconds = math.ceil(get_cool_off(request).total_seconds())
    response = render(
        request,
        "clips/login_locked_out.html",
        {"minutes": max(1, math.ceil(seconds / 60))},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
