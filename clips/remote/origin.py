"""Fetching a remote clip's audio without letting audio_url reach our own network.

A clip's audio_url is fetched by the server, so it must not become a way to
reach loopback, private, link-local or cloud-metadata addresses (SSRF). Every
connection, including each redirect hop, is checked twice: every address the
host resolves to before connecting, and the peer actually connected to after
(so DNS rebinding between the two gains nothing).
"""

import ipaddress
import re
import socket
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from clips.remote.url_syntax import SCHEMES as ALLOWED_SCHEMES
from clips.remote.url_syntax import url_syntax_problem

MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OriginBlocked(Exception):
    """The URL, or where it leads, is not a public http(s) origin we may fetch."""


class OriginTooLarge(Exception):
    """The origin's body is larger than settings.CLIPS_ORIGIN_MAX_BYTES."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(
        ip in ipaddress.ip_network(net)
        for net in settings.CLIPS_ORIGIN_ALLOWED_NETWORKS
    ):
        return True
    return all(_is_public(candidate) for candidate in _embedded(ip))


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address tunnelled in it (mapped, 6to4, Teredo)."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        teredo = ip.teredo[1] if ip.teredo else None
        found += [a for a in (ip.ipv4_mapped, ip.sixtofour, teredo) if a is not None]
    return found


def _is_public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> None:
    """Raise OriginBlocked unless the URL's scheme and host may be fetched at all."""
    problem = url_syntax_problem(url)
    if problem:
        raise OriginBlocked(problem)
    host = urlsplit(url).hostname
    allowed_hosts = settings.CLIPS_ORIGIN_ALLOWED_HOSTS
    if allowed_hosts and not any(_host_matches(host, rule) for rule in allowed_hosts):
        raise OriginBlocked(f"{host} is not an allowed audio host.")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address_allowed(str(literal)):
        raise OriginBlocked(f"{host} is not a public address.")


# A DNS label of at most 62 characters: three of them and a top-level domain stay
# within the 253 characters of a host name, so every match is a valid URL host.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?"
_ANY_HOST = rf"(?:{_LABEL}\.){{1,3}}[A-Za-z]{{2,63}}"
# A port of 1 to 65535 (clips.remote.url_syntax refuses 0 and more); path and query in
# RFC 3986 characters (percent signs only as escapes), no fragment.
_URL_TAIL = (
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}"
    r"|655[0-2][0-9]|6553[0-5]))?"
    r"(?:[/?](?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
)


def audio_url_regex() -> str:
    r"""The audio URLs a clip may be added with, as a regular expression (\A…\Z).

    http(s), a host *name* (an address literal could be private, which no pattern
    can tell), an optional port, a path and query. With CLIPS_ORIGIN_ALLOWED_HOSTS
    set, only those hosts. The API validates audio_url with it and the OpenAPI schema
    states it, so the two agree on every URL; check_url() and the model's URL
    validator accept every match.
    """
    rules = settings.CLIPS_ORIGIN_ALLOWED_HOSTS
    if rules:
        hosts = "|".join(
            rf"(?:{_LABEL}\.){{0,3}}{_any_case(rule[1:])}"
            if rule.startswith(".")
            else _any_case(rule)
            for rule in rules
        )
    else:
        hosts = _ANY_HOST
    return rf"\Ahttps?://(?:{hosts}){_URL_TAIL}\Z"


def _any_case(host: str) -> str:
    """A host name as a case-insensitive pattern (JSON Schema has no flags)."""
    return "".join(
        f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char)
        for char in host
    )


def _host_matches(host: str, rule: str) -> bool:
    """`example.com` matches itself; `.example.com` matches it and its subdomains."""
    rule = rule.lower()
    if rule.startswith("."):
        return host == rule[1:] or host.endswith(rule)
    return host == rule


def _check_resolved(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return  # urllib3 reports the failure to resolve as a connection error
    for *_, sockaddr in infos:
        if not address_allowed(sockaddr[0]):
            raise OriginBlocked(f"{host} resolves to a non-public address.")


def _check_peer(sock: socket.socket) -> None:
    if not address_allowed(sock.getpeername()[0]):
        sock.close()
        raise OriginBlocked("The audio origin connected to a non-public address.")


class _PublicPeerMixin:
    """urllib3 connection that only connects to addresses address_allowed() accepts."""

    def _new_conn(self) -> socket.socket:
        _check_resolved(self.host, self.port)
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _CheckedHTTPConnection(_PublicPeerMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_PublicPeerMixin, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # an environment proxy would hide the real peer
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    for scheme in ALLOWED_SCHEMES:
        session.mount(f"{scheme}://", _CheckedAdapter())
    return session


# One pooled session per process: urllib3's pools are thread-safe, cookies are off.
_session = _new_session()


def origin_open(url: str, *, method: str, headers: dict[str, str]) -> requests.Response:
    """Open a streamed response from a public origin, following a few checked redirects.

    Raises OriginBlocked, OriginTooLarge or requests.RequestException.
    """
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        response = _session.request(
            method,
            url,
            headers=headers,
            stream=True,
            allow_redirects=False,
            timeout=(
                settings.CLIPS_ORIGIN_CONNECT_TIMEOUT,
                settings.CLIPS_ORIGIN_READ_TIMEOUT,
            ),
        )
        if not response.is_redirect:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > settings.CLIPS_ORIGIN_MAX_BYTES:
                response.close()
                raise OriginTooLarge
            return response
        # A fragment is never sent, and check_url refuses one.
        url = urldefrag(urljoin(url, response.headers["Location"])).url
        response.close()
    raise OriginBlocked(f"The audio origin redirected more than {MAX_REDIRECTS} times.")
