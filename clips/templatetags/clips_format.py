"""Template filters and tags for the listener's pages (and the admin's waveforms)."""

from dataclasses import dataclass
from typing import Any

from django import template

register = template.Library()

# The waveform's drawing area: one unit per bucket across, 8-bit peaks up and down.
WAVEFORM_HEIGHT = 256


@register.filter
def duration(seconds: float) -> str:
    """A clip's length as a listener reads it: 6.0 -> "0:06", 75.4 -> "1:15"."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


@dataclass(frozen=True)
class WaveformPath:
    width: int  # buckets
    d: str  # an SVG path: one vertical stroke from min to max per bucket
    height: int = WAVEFORM_HEIGHT


def waveform_svg_path(peaks: list[int] | None) -> WaveformPath | None:
    """Peaks (min0, max0, min1, ...; 8-bit) as one SVG path, 0 at mid-height."""
    if not peaks:
        return None
    middle = WAVEFORM_HEIGHT // 2
    strokes = [
        # At least one unit tall, so that silence still draws a line.
        f"M{index} {middle - high}V{middle - min(low, high - 1)}"
        for index, (low, high) in enumerate(zip(peaks[::2], peaks[1::2], strict=True))
    ]
    return WaveformPath(width=len(strokes), d="".join(strokes))


@register.inclusion_tag("clips/_waveform.html")
def waveform(
    peaks: list[int] | None,
    *,
    label: str,
    duration: float | None = None,
    excerpt: Any = None,
    width: int | None = None,
    height: int | None = None,
    input_id: str = "",
    retention: list[float] | None = None,
) -> dict:
    """A clip's waveform as inline SVG: the catalogue, the clip page and the admin.

    `duration` lets clips/waveform.js seek the clip's player by a click on it;
    `excerpt` (a preview rendition) marks the stretch the preview plays, so a click
    seeks within it; `input_id` names the admin's field a click sets the preview's
    start in instead; `width` and `height` size it where no stylesheet does;
    `retention` (clips.listening) draws how far listeners get over what they hear.
    """
    path = waveform_svg_path(peaks)
    window = None
    start = getattr(excerpt, "excerpt_start", None)
    if path and duration and start is not None:
        window = {
            "start": start,
            "duration": excerpt.excerpt_duration,
            "x": path.width * start / duration,
            "width": path.width * excerpt.excerpt_duration / duration,
        }
    curve = ""
    if path and retention:
        left, span = (window["x"], window["width"]) if window else (0, path.width)
        curve = " ".join(
            f"{left + span * (index + 0.5) / len(retention):.2f},"
            f"{path.height * (1 - share):.2f}"
            for index, share in enumerate(retention)
        )
    return {
        "path": path,
        "curve": curve,
        "label": label,
        "duration": duration,
        "window": window,
        "width": width,
        "height": height,
        "input_id": input_id,
    }
