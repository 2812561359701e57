"""Someone else sends a stream's bytes, once Django has decided its answer.

nginx, after an X-Accel-Redirect (CLIPS_STREAM_OFFLOAD), from MEDIA_ROOT with
sendfile or from the bucket through a presigned URL; or, with CLIPS_S3_REDIRECT,
the bucket itself, to which the client is redirected. The internal locations are
in deploy/nginx/clips.conf.template.
"""

import time
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import Storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from clips.files import storage
from clips.streaming.ranges import ByteRange

# nginx's locations for MEDIA_ROOT: one honours the client's Range, the other
# sends the whole file whatever the client asked.
OFFLOAD_RANGE_PREFIX = "/_protected/audio/"
OFFLOAD_WHOLE_PREFIX = "/_protected/audio-whole/"
# nginx's location for the bucket: it fetches BUCKET_URL_HEADER's URL, asking
# for BUCKET_RANGE_HEADER's range (the one Django honoured) if there is one.
OFFLOAD_BUCKET_PREFIX = "/_protected/bucket/"
BUCKET_URL_HEADER = "X-Clips-Bucket-Url"
BUCKET_RANGE_HEADER = "X-Clips-Bucket-Range"
# The validators and caching the client must get from us, not from the file or
# the bucket (nginx puts them on the answer).
_KEPT_HEADERS = ("ETag", "Last-Modified", "Cache-Control")
# How long nginx may answer the same request of the same listener again by itself
# (deploy/nginx: the stream decisions' cache); "0": never.
REPEAT_HEADER = "X-Accel-Expires"


def stream_handoff(
    request: HttpRequest,
    *,
    files: Storage,
    name: str,
    byte_range: ByteRange | None,
    content_type: str,
    headers: dict[str, str],
) -> HttpResponse | None:
    """The answer that has nginx or the bucket send the bytes; None: Python does.

    Not for HEAD (no bytes) nor If-Match: nginx and the bucket check If-Match
    against their own ETag, so they would refuse what Django has accepted.
    byte_range is the range Django honoured (None: the whole file).
    """
    if request.method != "GET" or "If-Match" in request.headers:
        return None
    if settings.CLIPS_S3_REDIRECT and (
        url := storage.presigned_url(files, name, content_type=content_type)
    ):
        response = HttpResponseRedirect(url)
        # The URL expires within a minute: nobody may keep the redirect.
        response.headers["Cache-Control"] = "no-store"
        return response
    if not settings.CLIPS_STREAM_OFFLOAD:
        return None
    url = storage.presigned_url(files, name)  # None: the file is on disk
    response = HttpResponse(content_type=content_type)
    if url:
        response.headers["X-Accel-Redirect"] = OFFLOAD_BUCKET_PREFIX + quote(name)
        response.headers[BUCKET_URL_HEADER] = url
        if byte_range is not None:
            range_value = f"bytes={byte_range.start}-{byte_range.end}"
            response.headers[BUCKET_RANGE_HEADER] = range_value
    else:
        partial = byte_range is not None
        prefix = OFFLOAD_RANGE_PREFIX if partial else OFFLOAD_WHOLE_PREFIX
        response.headers["X-Accel-Redirect"] = prefix + quote(name)
    for header in _KEPT_HEADERS:
        response.headers[header] = headers[header]
    return response


def repeat_until(response: HttpResponse, *, until: float) -> HttpResponse:
    """Let nginx repeat a hand-over to the same listener until `until` (a Unix time:
    when a repeat could count a play), for at most CLIPS_STREAM_REPEAT_SECONDS,
    and well within a presigned URL's life."""
    if "X-Accel-Redirect" not in response.headers:
        return response  # a redirect to the bucket: the client's to keep, or not
    seconds = min(settings.CLIPS_STREAM_REPEAT_SECONDS, until - time.time())
    if BUCKET_URL_HEADER in response.headers:
        seconds = min(seconds, settings.CLIPS_S3_URL_SECONDS / 2)
    response.headers[REPEAT_HEADER] = str(max(0, int(seconds)))
    return response
