"""Stream metering: bytes, durations and failures of audio responses sent by Python,
and the stream's JSON errors, each counted by its code."""

import time
from typing import Literal

from django.http import JsonResponse

from clips import metrics
from clips.api.errors import json_error


def stream_error_record(*, reason: str) -> None:
    """Count a failed stream; reason must be one of metrics.STREAM_ERROR_REASONS."""
    if reason not in metrics.STREAM_ERROR_REASONS:
        # A label value outside the fixed set would be a new series per typo.
        raise ValueError(f"Unknown stream error reason: {reason!r}")
    metrics.STREAM_ERRORS.labels(reason=reason).inc()


class StreamMeter:
    """Times one audio response body and counts its bytes.

    Under gunicorn a file goes out by sendfile, never through read(), so the
    body wrappers in clips.streaming.views report what they can see: the first byte
    asked for, a failure, and close(), which the server calls when it is done.
    """

    def __init__(self, *, source: Literal["file", "remote"], started: float) -> None:
        self._source = source
        self._started = started
        self._first_byte_seen = False
        self._failed = False
        self._finished = False

    def first_byte(self) -> None:
        if not self._first_byte_seen:
            self._first_byte_seen = True
            metrics.STREAM_FIRST_BYTE.labels(source=self._source).observe(
                time.perf_counter() - self._started
            )

    def failed(self, *, reason: str) -> None:
        self._failed = True
        stream_error_record(reason=reason)

    def finished(self, *, sent: int, complete: bool) -> None:
        """The body is closed: a listener who left early is a client_gone error."""
        if self._finished:  # Django may close a response's body more than once
            return
        self._finished = True
        metrics.STREAM_BYTES.labels(source=self._source).inc(sent)
        metrics.STREAM_DURATION.labels(source=self._source).observe(
            time.perf_counter() - self._started
        )
        if not complete and not self._failed:
            stream_error_record(reason="client_gone")


def stream_error(
    status: int, *, code: str, detail: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    """A stream's JSON error, also counted in clips_stream_errors_total{reason=code}."""
    stream_error_record(reason=code)
    return json_error(status, code=code, detail=detail, headers=headers)
