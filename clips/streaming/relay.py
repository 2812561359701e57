"""Remote clips: audio relayed from its origin, answering as local files do.

The client's Range and preconditions are forwarded, and checked again against
the origin's validators, so an origin that ignores them cannot make us splice
two versions of a file (a resumed download after the origin's file changed).
"""

import re

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import parse_http_date_safe

from clips import plays
from clips.models import Clip
from clips.remote.origin import OriginBlocked, OriginTooLarge, origin_open
from clips.streaming import metering, ranges
from clips.streaming.metering import stream_error
from clips.streaming.ranges import Validators

CHUNK_BYTES = 64 * 1024
# What a client may ask the origin for; the origin's answer is checked too.
_FORWARDED = (
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
)
# Headers of a remote origin's answer that describe the bytes we pass through.
_ORIGIN_HEADERS = (
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
)


class _OriginBody:
    """The body of a remote origin's answer; closing it releases the connection."""

    def __init__(self, origin: requests.Response, meter: metering.StreamMeter):
        self._origin = origin
        self._meter = meter
        self._sent = 0
        self._complete = False

    def __iter__(self):
        try:
            for chunk in self._origin.iter_content(CHUNK_BYTES):
                self._meter.first_byte()
                self._sent += len(chunk)
                if self._sent > settings.CLIPS_ORIGIN_MAX_BYTES:
                    # Abort rather than end cleanly: a cut-off body must not look
                    # complete.
                    self._meter.failed(reason="origin_too_large")
                    raise OriginTooLarge
                yield chunk
        except requests.RequestException:
            self._meter.failed(reason="origin_error")
            raise
        self._complete = True

    def close(self) -> None:
        self._origin.close()
        self._meter.finished(sent=self._sent, complete=self._complete)


def stream_remote(request: HttpRequest, clip: Clip, *, started: float) -> HttpResponse:
    """Relay a remote clip: the same statuses, validators and play rule as a file."""
    forwarded = {
        name: request.headers[name] for name in _FORWARDED if name in request.headers
    }
    if ranges.parse_range_spec(forwarded.get("Range")) is None:
        forwarded.pop("Range", None)
        forwarded.pop("If-Range", None)
    origin = _open(clip, request.method, forwarded)
    if isinstance(origin, HttpResponse):
        return origin

    validators = Validators(
        etag=origin.headers.get("ETag"),
        last_modified=parse_http_date_safe(origin.headers.get("Last-Modified", "")),
    )
    status = origin.status_code
    if status in (200, 206):  # the origin may have ignored the preconditions
        status = ranges.precondition_status(request, validators) or status
    stale_if_range = ranges.range_header(request, validators) is None
    if status == 206 and "If-Range" in forwarded and stale_if_range:
        # The origin ignored If-Range: the client's copy is out of date, so it
        # must get the whole new file, not a range of it.
        origin.close()
        del forwarded["Range"], forwarded["If-Range"]
        origin = _open(clip, request.method, forwarded)
        if isinstance(origin, HttpResponse):
            return origin
        status = origin.status_code
    if status not in (200, 206):
        origin.close()
        return _origin_refusal(status, origin)

    content_type = origin.headers.get("Content-Type", "")
    if not content_type.startswith(("audio/", "application/ogg")):
        # Never relay an origin's HTML or script as if it were ours.
        content_type = "application/octet-stream"

    if request.method == "GET":
        plays.stream_play_record(
            request,
            clip=clip,
            first_byte=_origin_first_byte(origin),
            length=_header_count(origin.headers.get("Content-Length", "")),
            size=_origin_size(origin),
            listener=plays.listener_of(request),
        )
    if request.method == "HEAD":
        origin.close()
        response = HttpResponse(status=status, content_type=content_type)
    else:
        meter = metering.StreamMeter(source="remote", started=started)
        response = StreamingHttpResponse(
            _OriginBody(origin, meter), status=status, content_type=content_type
        )
    for name in _ORIGIN_HEADERS:
        if name in origin.headers:
            response.headers[name] = origin.headers[name]
    return response


def _open(clip: Clip, method: str, headers: dict[str, str]):
    """The origin's answer (headers read, body not yet), or our 502 JSON error."""
    try:
        return origin_open(
            clip.audio_url,
            method=method,
            headers={"Accept-Encoding": "identity", **headers},
        )
    except OriginBlocked:
        return stream_error(
            502,
            code="origin_blocked",
            detail="This clip's audio URL may not be fetched.",
        )
    except OriginTooLarge:
        return stream_error(
            502,
            code="origin_too_large",
            detail="This clip's remote audio is too large.",
        )
    except requests.RequestException:
        return stream_error(
            502, code="origin_unreachable", detail="The audio origin did not answer."
        )


def _origin_refusal(status: int, origin: requests.Response) -> HttpResponse:
    """Our answer when the origin's (or our own check's) status is not 200/206."""
    if status == 304:
        return ranges.not_modified(origin.headers)
    if status == 412:
        return ranges.precondition_failed()
    if status == 416:
        return ranges.range_not_satisfiable(origin.headers.get("Content-Range"))
    return stream_error(
        502,
        code="origin_error",
        detail=f"The audio origin answered HTTP {status}.",
    )


def _header_count(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _origin_first_byte(origin: requests.Response) -> int | None:
    if origin.status_code == 200:
        return 0
    match = re.match(r"bytes (\d+)-", origin.headers.get("Content-Range", ""))
    return int(match[1]) if match else None


def _origin_size(origin: requests.Response) -> int | None:
    if origin.status_code == 200:
        return _header_count(origin.headers.get("Content-Length", ""))
    return _header_count(origin.headers.get("Content-Range", "").rpartition("/")[2])
