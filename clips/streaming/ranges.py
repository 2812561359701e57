"""HTTP byte ranges and preconditions (RFC 9110 §13-14) and the answers they give.

Pure functions of a request and a representation's validators, so the stream view
answers the same whether the bytes come from storage or from a remote origin.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import parse_http_date_safe

from clips.api.errors import json_error
from clips.streaming.metering import stream_error

# Range units are case-insensitive (RFC 9110 §14.1); whitespace is stripped first.
_RANGE_SPEC = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Validators:
    """What identifies one version of the audio: a strong ETag and/or a date."""

    etag: str | None  # quoted, as sent in the ETag header
    last_modified: int | None  # seconds since the epoch


def _byte_offset(value: str) -> int | None:
    if not value:
        return None
    # Any offset past 10**18 is past every file; don't let int() chew on huge numbers.
    value = value.lstrip("0") or "0"
    return int(value) if len(value) <= 18 else 10**19


def parse_range_spec(header: str | None) -> tuple[int | None, int | None] | None:
    """(first, last) of a single `bytes=` range, or None when there is none we honour.

    Multiple ranges, other units and malformed or inverted specs are ignored, as
    RFC 9110 allows: the whole representation is served instead.
    """
    match = _RANGE_SPEC.fullmatch((header or "").replace(" ", ""))
    if not match:
        return None
    first, last = _byte_offset(match[1]), _byte_offset(match[2])
    if first is None and last is None:
        return None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The byte range to send of a `size`-byte file; None means send it whole."""
    spec = parse_range_spec(header)
    if spec is None:
        return None
    first, last = spec
    if first is None:  # suffix range: the last `last` bytes
        if last == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - last), size - 1)
    if first >= size:
        raise RangeNotSatisfiable
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def precondition_status(request: HttpRequest, validators: Validators) -> int | None:
    """412 or 304 when a precondition decides the answer, else None.

    Evaluated before Range, in RFC 9110 §13.2.2's order (If-Match,
    If-Unmodified-Since, If-None-Match, If-Modified-Since), as Django does.
    """
    response = get_conditional_response(
        request, etag=validators.etag, last_modified=validators.last_modified
    )
    return None if response is None else response.status_code


def range_header(request: HttpRequest, validators: Validators) -> str | None:
    """The client's Range header, unless If-Range says its copy is out of date."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return header
    if if_range.startswith('"'):  # an entity tag: strong comparison only
        return header if if_range == validators.etag else None
    date = parse_http_date_safe(if_range)
    if date is not None and date == validators.last_modified:
        return header
    return None


def not_modified(headers: Mapping[str, str]) -> HttpResponse:
    """304 with the validators, no body and no Content-Length (RFC 9110 §8.6).

    Streaming, so CommonMiddleware does not add "Content-Length: 0", which would
    claim the representation is empty.
    """
    response = StreamingHttpResponse((), status=304)
    del response.headers["Content-Type"]
    for name in ("ETag", "Last-Modified", "Cache-Control"):
        if headers.get(name):
            response.headers[name] = headers[name]
    return response


def precondition_failed() -> HttpResponse:
    return json_error(
        412,
        code="precondition_failed",
        detail="The audio does not match If-Match or If-Unmodified-Since.",
    )


def range_not_satisfiable(content_range: str | None) -> HttpResponse:
    headers = {"Content-Range": content_range} if content_range else None
    return stream_error(
        416,
        code="range_not_satisfiable",
        detail="Range not satisfiable.",
        headers=headers,
    )
