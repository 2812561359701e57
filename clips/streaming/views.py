"""The stream endpoint: a clip's audio from storage, with Range and preconditions.

A plain Django view, not DRF: it returns bytes, not representations. Remote
clips are relayed by clips.streaming.relay; what a play is, is decided by clips.plays.
"""

import math
import os
import time

from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from clips import plays, selectors, services
from clips.api.errors import json_error, method_not_allowed
from clips.api.throttling import StreamThrottle
from clips.files import storage
from clips.models import Clip, ClipStatus, Rendition, RenditionName
from clips.streaming import facts, metering, offload, ranges, relay
from clips.streaming.facts import StoredAudio
from clips.streaming.metering import stream_error
from clips.streaming.ranges import ByteRange, RangeNotSatisfiable, Validators


class _FileRange:
    """A file limited to one byte range, measured by a StreamMeter.

    FileResponse reads it in blocks; gunicorn's sendfile uses fileno(), the
    current offset and Content-Length, so either way only the range is sent.
    socket.sendfile() seeks it to where sending stopped, so close() knows how
    many bytes went out on either path (and tell() lets FileResponse see the
    range's length without reading it).
    """

    def __init__(self, file, byte_range: ByteRange, meter: metering.StreamMeter):
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


@csrf_exempt  # read-only; exempt so that other methods get a JSON 405, not a CSRF page
def clip_stream(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream a clip's audio (GET, HEAD, Range); a GET that starts a listen counts.

    The decision takes one round trip to Redis (the rate limit, the clip's facts,
    whether this listener's listen is already counted) and none to the database
    once a ready clip's facts are kept (clips.streaming.facts).
    """
    started = time.perf_counter()
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(request)
    audio_format = request.GET.get("format", FORMAT_PREVIEW)
    known_format = audio_format in FORMATS
    keys = []
    if known_format:
        keys = facts.facts_keys(clip_id=pk, audio_format=audio_format)
    listener = plays.listener_of(request) if request.method == "GET" else None
    if listener:
        keys.append(plays.listening_key(clip_id=pk, listener=listener))
    throttle = StreamThrottle()
    allowed, values = throttle.allow_and_read(request, keys=keys)
    if not allowed:
        return json_error(
            429,
            code="throttled",
            detail="Too many stream requests.",
            headers={"Retry-After": str(math.ceil(throttle.wait()))},
        )
    cache_up = values is not None
    values = values if cache_up else [None] * len(keys)
    kept = facts.facts_found(values[:2]) if known_format and cache_up else None
    if kept is not None:
        clip = Clip(pk=pk, genre=kept.genre)  # all a play needs of it
        stored = kept.audio
    else:
        clip = selectors.clip_get(clip_id=pk, user=request.user)
        if clip is None:
            return json_error(404, code="not_found", detail="No clip with this id.")
        if clip.status == ClipStatus.FAILED:  # only curators get this far
            return json_error(
                409,
                code="clip_failed",
                detail=f"This clip's audio could not be read: {clip.failure_reason}",
            )
        if not known_format:
            return json_error(
                400,
                code="invalid",
                detail=f"format must be one of: {', '.join(FORMATS)}.",
            )
        stored = _stored_audio(clip, audio_format)
        if stored is None and audio_format == FORMAT_OPUS:
            return json_error(
                404,
                code="not_found",
                detail="This clip has no Opus preview yet: use format=preview.",
            )
        if stored is None:  # a remote clip not ingested yet
            return relay.stream_remote(request, clip, started=started)
        if clip.status == ClipStatus.READY and cache_up:
            facts.facts_keep(
                clip_id=pk,
                audio_format=audio_format,
                generation=values[1],
                facts=facts.ClipAudio(genre=clip.genre, audio=stored),
            )
    listening = values[-1] if listener and cache_up else None
    return _stream_file(
        request, clip, stored, started, listener=listener, listening=listening
    )


# ?format=: the web preview as MP3 (the default) or Ogg Opus, or the audio as the
# curator gave it.
FORMAT_PREVIEW = RenditionName.PREVIEW.value
FORMAT_OPUS = RenditionName.OPUS.value
FORMAT_ORIGINAL = "original"
FORMATS = (FORMAT_PREVIEW, FORMAT_OPUS, FORMAT_ORIGINAL)


def _stored_audio(clip: Clip, audio_format: str) -> StoredAudio | None:
    """What to send: the preview, else (not made yet) the original, from storage;
    the Opus preview or nothing."""
    if audio_format == FORMAT_OPUS:
        rendition = selectors.rendition_get(clip=clip, name=RenditionName.OPUS)
        return _rendition_audio(clip, rendition) if rendition else None
    wanted = [RenditionName.ORIGINAL] if clip.is_remote else []
    if audio_format == FORMAT_PREVIEW:
        wanted.insert(0, RenditionName.PREVIEW)
    for name in wanted:
        if rendition := selectors.rendition_get(clip=clip, name=name):
            return _rendition_audio(clip, rendition)
    if clip.is_remote:
        return None
    # Once the ingest has read this very file (new audio makes the clip pending
    # again), its row knows the facts; before, the storage is asked.
    ingested = bool(clip.ingested_at and clip.audio_digest)
    return StoredAudio(
        files=clip.audio_file.storage,
        name=clip.audio_file.name,
        content_type=clip.content_type,
        digest=clip.audio_digest or None,
        size=clip.size_bytes if ingested else None,
        modified=clip.ingested_at if ingested else None,
    )


def _rendition_audio(clip: Clip, rendition: Rendition) -> StoredAudio:
    return StoredAudio(
        files=rendition.file.storage,
        name=rendition.file.name,
        content_type=rendition.content_type,
        digest=rendition.digest,
        size=rendition.size_bytes,
        modified=clip.ingested_at,  # the ingest wrote it then
    )


def _stream_file(
    request: HttpRequest,
    clip: Clip,
    stored: StoredAudio,
    started: float,
    *,
    listener: str | None,
    listening: float | None,
) -> HttpResponse:
    """The answer for stored audio; listener (None: not a GET, or staff) and whether
    its listen is counted already (clips.plays.listening_key's value) decide the
    play."""
    files, name = stored.files, stored.name
    try:
        size = stored.size if stored.size is not None else files.size(name)
        modified = int((stored.modified or files.get_modified_time(name)).timestamp())
        digest = stored.digest or services.clip_audio_digest(clip=clip)
    except storage.STORAGE_ERRORS as error:
        if not storage.file_missing(error):
            raise
        return _audio_missing()
    etag = f'"{digest[:32]}"'
    validators = Validators(etag=etag, last_modified=modified)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": "no-cache",
    }
    status = ranges.precondition_status(request, validators)
    if status == 412:
        return ranges.precondition_failed()
    if status == 304:
        return ranges.not_modified(headers)
    try:
        byte_range = ranges.parse_range(ranges.range_header(request, validators), size)
    except RangeNotSatisfiable:
        return _with_headers(ranges.range_not_satisfiable(f"bytes */{size}"), headers)
    partial = byte_range is not None
    byte_range = byte_range or ByteRange(0, size - 1)

    content_type = stored.content_type or "application/octet-stream"
    handoff = offload.stream_handoff(
        request,
        files=files,
        name=name,
        byte_range=byte_range if partial else None,
        content_type=content_type,
        headers=headers,
    )
    audio = None
    if handoff is None and request.method == "GET":
        try:  # before the play: a file gone from storage is no listen
            audio = files.open(name, "rb")
        except storage.STORAGE_ERRORS as error:
            if not storage.file_missing(error):
                raise
            return _audio_missing()

    if request.method == "GET":
        repeats_count_nothing_until = plays.stream_play_record(
            request,
            clip=clip,
            first_byte=byte_range.start,
            length=byte_range.length,
            size=size,
            listener=listener,
            listening=listening,
        )
        if handoff is not None:  # only ever for a GET
            return offload.repeat_until(handoff, until=repeats_count_nothing_until)
    if audio is None:  # HEAD
        response = HttpResponse(content_type=content_type)
    else:
        meter = metering.StreamMeter(source="file", started=started)
        response = FileResponse(_FileRange(audio, byte_range, meter))
        response.headers["Content-Type"] = content_type
    response.status_code = 206 if partial else 200
    headers["Content-Length"] = str(byte_range.length)
    if partial:
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return _with_headers(response, headers)


def _audio_missing() -> HttpResponse:
    return stream_error(
        404, code="audio_missing", detail="This clip's audio file is missing."
    )


def _with_headers(response: HttpResponse, headers: dict[str, str]) -> HttpResponse:
    for name, value in headers.items():
        response.headers[name] = value
    return response
