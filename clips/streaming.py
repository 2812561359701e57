"""The stream endpoint and its HTTP byte-range handling.

A plain Django view, not DRF: it returns bytes, not representations.
"""

import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe, quote_etag
from django.views.decorators.csrf import csrf_exempt

from clips import selectors, services
from clips.errors import json_error, method_not_allowed
from clips.models import Clip
from clips.origin import OriginBlocked, OriginTooLarge, origin_open
from clips.throttling import StreamThrottle

CHUNK_BYTES = 64 * 1024
_RANGE_SPEC = re.compile(r"bytes=(\d*)-(\d*)")
# Headers of a remote origin's answer that describe the bytes we pass through.
_ORIGIN_HEADERS = (
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
)


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _digits(value: str) -> int | None:
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
    first, last = _digits(match[1]), _digits(match[2])
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


class _FileRange:
    """A file limited to one byte range, measured by a StreamMeter.

    FileResponse reads it in blocks; gunicorn's sendfile uses fileno(), the
    current offset and Content-Length, so either way only the range is sent.
    socket.sendfile() seeks it to where sending stopped, so close() knows how
    many bytes went out on either path (and tell() lets FileResponse see the
    range's length without reading it).
    """

    def __init__(self, file, byte_range: ByteRange, meter: services.StreamMeter):
        file.seek(byte_range.start)
        self._file = file
        self._start = self._position = byte_range.start
        self._end = byte_range.end + 1
        self._meter = meter

    def read(self, size: int = -1) -> bytes:
        self._meter.first_byte()
        remaining = max(0, self._end - self._position)
        if size < 0 or size > remaining:
            size = remaining
        data = self._file.read(size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Offsets within the file, as socket.sendfile() gives; the range ends it."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._end}
        self._position = self._file.seek(base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def fileno(self) -> int:
        self._meter.first_byte()  # gunicorn asks for it just before sendfile
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()
        self._meter.finished(
            sent=self._position - self._start, complete=self._position >= self._end
        )


class _OriginBody:
    """The body of a remote origin's answer; closing it releases the connection."""

    def __init__(self, origin: requests.Response, meter: services.StreamMeter):
        self._origin = origin
        self._meter = meter
        self._sent = 0
        self._complete = False

    def __iter__(self) -> Iterator[bytes]:
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


@csrf_exempt  # read-only; exempt so that other methods get a JSON 405, not a CSRF page
def clip_stream(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream a clip's audio (GET, HEAD, Range); a GET that starts a listen counts."""
    started = time.perf_counter()
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request)
    throttle = StreamThrottle()
    if not throttle.allow_request(request, None):
        response = json_error(429, code="throttled", detail="Too many stream requests.")
        response.headers["Retry-After"] = str(math.ceil(throttle.wait() or 1))
        return response
    clip = selectors.clip_get(clip_id=pk)
    if clip is None:
        return json_error(404, code="not_found", detail="No clip with this id.")
    if clip.is_remote:
        return _stream_remote(request, clip, started)
    return _stream_file(request, clip, started)


def _stream_error(status: int, *, code: str, detail: str) -> HttpResponse:
    """A JSON error that also counts in clips_stream_errors_total{reason=code}."""
    services.stream_error_record(reason=code)
    return json_error(status, code=code, detail=detail)


def _stream_file(request: HttpRequest, clip: Clip, started: float) -> HttpResponse:
    storage, name = clip.audio_file.storage, clip.audio_file.name
    try:
        size = storage.size(name)
        modified = int(storage.get_modified_time(name).timestamp())
    except OSError:
        return _stream_error(
            404, code="audio_missing", detail="This clip's audio file is missing."
        )
    etag = quote_etag(f"{modified:x}-{size:x}")
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": "no-cache",
    }
    content_type = clip.content_type or "application/octet-stream"

    range_header = request.headers.get("Range")
    if range_header and not _if_range_holds(request, etag, modified):
        range_header = None
    try:
        byte_range = parse_range(range_header, size)
    except RangeNotSatisfiable:
        response = _stream_error(
            416, code="range_not_satisfiable", detail="Range not satisfiable."
        )
        headers["Content-Range"] = f"bytes */{size}"
        return _with_headers(response, headers)
    partial = byte_range is not None
    byte_range = byte_range or ByteRange(0, size - 1)

    not_modified = get_conditional_response(request, etag=etag, last_modified=modified)
    if not_modified is not None:
        return _with_headers(not_modified, headers)

    if request.method == "GET" and services.is_new_listen(
        first_byte=byte_range.start, length=byte_range.length
    ):
        services.play_record(clip=clip)

    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
    else:
        meter = services.StreamMeter(source="file", started=started)
        response = FileResponse(_FileRange(storage.open(name, "rb"), byte_range, meter))
        response.headers["Content-Type"] = content_type
    response.status_code = 206 if partial else 200
    headers["Content-Length"] = str(byte_range.length)
    if partial:
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return _with_headers(response, headers)


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _if_range_holds(request: HttpRequest, etag: str, modified: int) -> bool:
    """RFC 9110 If-Range: honour Range only if the client's copy is still current."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    if validator.startswith('"'):
        return validator == etag
    return parse_http_date_safe(validator) == modified


def _stream_remote(request: HttpRequest, clip: Clip, started: float) -> HttpResponse:
    headers = {"Accept-Encoding": "identity"}
    if parse_range_spec(request.headers.get("Range")) is not None:
        headers["Range"] = request.headers["Range"]
    try:
        origin = origin_open(clip.audio_url, method=request.method, headers=headers)
    except OriginBlocked:
        return _stream_error(
            502,
            code="origin_blocked",
            detail="This clip's audio URL may not be fetched.",
        )
    except OriginTooLarge:
        return _stream_error(
            502,
            code="origin_too_large",
            detail="This clip's remote audio is too large.",
        )
    except requests.RequestException:
        return _stream_error(
            502, code="origin_unreachable", detail="The audio origin did not answer."
        )

    if origin.status_code not in (200, 206):
        origin.close()
        if origin.status_code == 416:
            response = _stream_error(
                416, code="range_not_satisfiable", detail="Range not satisfiable."
            )
            if "Content-Range" in origin.headers:
                response.headers["Content-Range"] = origin.headers["Content-Range"]
            return response
        return _stream_error(
            502,
            code="origin_error",
            detail=f"The audio origin answered HTTP {origin.status_code}.",
        )

    content_type = origin.headers.get("Content-Type", "")
    if not content_type.startswith(("audio/", "application/ogg")):
        # Never relay an origin's HTML or script as if it were ours.
        content_type = "application/octet-stream"

    if request.method == "GET" and services.is_new_listen(
        first_byte=_origin_first_byte(origin), length=_origin_length(origin)
    ):
        services.play_record(clip=clip)

    if request.method == "HEAD":
        origin.close()
        response = HttpResponse(status=origin.status_code, content_type=content_type)
    else:
        meter = services.StreamMeter(source="remote", started=started)
        response = StreamingHttpResponse(
            _OriginBody(origin, meter),
            status=origin.status_code,
            content_type=content_type,
        )
    return _with_headers(
        response,
        {
            name: origin.headers[name]
            for name in _ORIGIN_HEADERS
            if name in origin.headers
        },
    )


def _origin_first_byte(origin: requests.Response) -> int | None:
    if origin.status_code == 200:
        return 0
    match = re.match(r"bytes (\d+)-", origin.headers.get("Content-Range", ""))
    return int(match[1]) if match else None


def _origin_length(origin: requests.Response) -> int | None:
    length = origin.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None
