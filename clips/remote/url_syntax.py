"""Which audio URLs are written plainly enough that every URL parser reads them alike.

A clip's audio_url is read by Python (urllib.parse, in our checks), by requests and
urllib3 (which fetch it) and by browsers (WHATWG URL, which play the API's links).
Where they disagree on the host, a check passes one host and a fetch or a listener
goes to another: `http://127.0.0.1:8309\\@example.com/` is example.com to Python
and 127.0.0.1 to a browser and to urllib3. So a URL is accepted only in a form on
which they all agree (clips/tests/remote/test_url_syntax.py checks this against urllib,
urllib3 and ada, a WHATWG parser):

- only the characters RFC 3986 allows: no whitespace, control characters,
  backslashes or non-ASCII (percent-encode them; IDN hosts in their xn-- form);
- `http://` or `https://` then the host: no userinfo (`user:pass@`), which would be
  shown to every listener; no fragment, which is never sent to the origin;
- the host is a DNS name (dot-separated labels of letters, digits and hyphens, no
  percent-encoding, xn-- labels valid IDNA), four decimal IPv4 numbers or an IPv6
  literal in brackets; a name ending in a number (`2130706433`, `127.1`, `0x7f.1`)
  is an IPv4 address to a browser and a name to Python, so it is refused;
- a port, if given, is 1 to 65535.
"""

import ipaddress
import re

import idna

# RFC 3986 pchar, then the path-abempty and query built from it.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_PATH_AND_QUERY = re.compile(rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?")
# Any character that may not appear anywhere in an accepted URL.
_NOT_URI_CHARACTER = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]%]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# What a browser takes for an IPv4 number in a host's last label (WHATWG's
# "ends in a number"): decimal, or hex after 0x.
_NUMBER_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
SCHEMES = ("http", "https")


def url_syntax_problem(url: str) -> str | None:
    """Why URL parsers might read `url` differently (a sentence), or None if not."""
    return _characters_problem(url) or _structure_problem(url)


def _characters_problem(url: str) -> str | None:
    bad = _NOT_URI_CHARACTER.search(url)
    if bad is None:
        if _BAD_PERCENT.search(url):
            return "The audio URL has a % not followed by two hex digits; write %25."
        return None
    char = bad[0]
    if char.isspace() or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
        return (
            f"The audio URL contains whitespace or a control character "
            f"(position {bad.start() + 1}); percent-encode it (a space is %20)."
        )
    if char == "\\":
        return (
            "The audio URL contains a backslash, which browsers read as / "
            "and Python does not; write / or %5C."
        )
    if not char.isascii():
        return _non_ascii_problem(url, char)
    return (
        f"The audio URL contains {char!r}, which URLs may not hold "
        f"(RFC 3986); percent-encode it as %{ord(char):02X}."
    )


def _non_ascii_problem(url: str, char: str) -> str:
    rest = url.partition("://")[2]
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if char in host:
        host = host.split(":", 1)[0]
        try:
            ascii_host = idna.encode(host, uts46=True).decode()
        except idna.IDNAError:
            return f"The audio URL's host {host!r} is not a valid domain name (IDNA)."
        return f"Write the audio URL's host in its ASCII (IDNA) form: {ascii_host}."
    return (
        f"The audio URL contains {char!r}; percent-encode non-ASCII characters "
        f"as UTF-8 (e.g. é is %C3%A9)."
    )


def _structure_problem(url: str) -> str | None:
    scheme = _SCHEME.match(url)
    if not scheme:
        return "The audio URL must start with http:// or https://."
    if scheme[0].lower() not in SCHEMES:
        return f"Only http and https audio URLs are fetched, not {scheme[0]!r}."
    after_scheme = url[scheme.end() + 1 :]
    if not after_scheme.startswith("//") or after_scheme.startswith("///"):
        return (
            f"The audio URL must start with {scheme[0].lower()}:// and then the "
            f"host; browsers and Python read other forms differently."
        )
    authority, rest = re.match(r"([^/?#]*)(.*)", after_scheme[2:], re.S).groups()
    if "@" in authority:
        return (
            "The audio URL contains credentials (user:password@ before the host); "
            "they would be shown to every listener. Give a URL that needs none."
        )
    return _authority_problem(authority) or _rest_problem(rest)


def _authority_problem(authority: str) -> str | None:
    if authority.startswith("["):
        host, bracket, port = authority[1:].partition("]")
        if not bracket:
            return "The audio URL's IPv6 host has no closing ]."
        if port and not port.startswith(":"):
            return "The audio URL has text after its IPv6 host's ]; only :port may."
        port = port[1:] if port else None
        problem = _ipv6_problem(host)
    else:
        host, colon, port = authority.partition(":")
        port = port if colon else None
        problem = _host_problem(host)
    if problem:
        return problem
    if port is not None and not (
        port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535
    ):
        return f"The audio URL's port {port!r} is not a number from 1 to 65535."
    return None


def _ipv6_problem(host: str) -> str | None:
    try:
        if "%" in host:
            raise ValueError
        ipaddress.IPv6Address(host)
    except ValueError:
        return f"The audio URL's host [{host}] is not an IPv6 address."
    return None


def _host_problem(host: str) -> str | None:
    if not host:
        return "The audio URL has no host."
    if "%" in host:
        return (
            "The audio URL's host is percent-encoded, which browsers decode and "
            "Python does not; write it plainly."
        )
    labels = host.split(".")
    if "" in labels:
        return (
            f"The audio URL's host {host!r} has an empty label (a leading, "
            f"trailing or double dot)."
        )
    if _NUMBER_LABEL.fullmatch(labels[-1]):
        try:
            if len(labels) != 4:
                raise ValueError
            ipaddress.IPv4Address(host)
        except ValueError:
            return (
                f"The audio URL's host {host!r} ends in a number but is not an "
                f"IPv4 address as four decimal numbers (e.g. 93.184.215.14)."
            )
        return None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return (
            f"The audio URL's host {host!r} is not a domain name: dot-separated "
            f"labels of letters, digits and inner hyphens, each 1 to 63 long."
        )
    for label in labels:
        if label.lower().startswith("xn--") and not _valid_idna_label(label):
            return f"The audio URL's host label {label!r} is not valid IDNA."
    return None


def _valid_idna_label(label: str) -> bool:
    try:
        return idna.encode(idna.decode(label)).decode() == label.lower()
    except (idna.IDNAError, UnicodeError):
        return False


def _rest_problem(rest: str) -> str | None:
    if "#" in rest:
        return (
            "The audio URL has a fragment (#...), which is never sent to the "
            "origin; leave it out."
        )
    if not _PATH_AND_QUERY.fullmatch(rest):
        return (
            "The audio URL has [ or ] outside an IPv6 host; percent-encode them "
            "as %5B and %5D."
        )
    return None
