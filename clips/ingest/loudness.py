"""Loudness as listeners hear it: EBU R128 / ITU-R BS.1770, by FFmpeg's ebur128.

FFmpeg's filter does the K-weighting, the gating and the 4x oversampled true peak;
this module feeds it decoded frames and reads its answer from the last frame's
metadata, so measuring costs no decode of its own.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error


@dataclass(frozen=True)
class Loudness:
    # Integrated loudness; None when nothing passes BS.1770's -70 LUFS gate.
    lufs: float | None
    # Decibels of full scale, 4x oversampled; None for digital silence.
    true_peak_dbtp: float | None


class Meter:
    """Integrated loudness and true peak of the frames given to `add`, in order."""

    def __init__(
        self, *, rate: int, layout: str, format: str, time_base: Fraction | None = None
    ) -> None:
        """Frames to come are of this rate, layout and format, their timestamps in
        `time_base` (a stream's; by default one per sample)."""
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(
            format=format,
            sample_rate=rate,
            layout=layout,
            time_base=time_base or Fraction(1, rate),
        )
        meter = self._graph.add("ebur128", "peak=true:metadata=1")
        sink = self._graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        self._graph.configure()
        self._last: dict[str, str] = {}

    @classmethod
    def of_stream(cls, stream: av.audio.stream.AudioStream) -> "Meter":
        """A meter for the frames decoded from `stream`."""
        return cls(
            rate=stream.rate,
            layout=stream.layout.name,
            format=stream.format.name,
            time_base=stream.time_base,
        )

    def add(self, frame: av.AudioFrame | None) -> None:
        """Measure `frame`; None ends the measure."""
        self._graph.push(frame)
        while True:
            try:
                metadata = self._graph.pull().metadata
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if "lavfi.r128.I" in metadata:  # frames flushed at the end carry none
                self._last = dict(metadata)

    def loudness(self) -> Loudness:
        self.add(None)
        lufs = float(self._last.get("lavfi.r128.I", "-inf"))
        peak = float(self._last.get("lavfi.r128.true_peak", "0"))
        return Loudness(
            lufs=round(lufs, 2) if lufs > -70 else None,
            true_peak_dbtp=round(20 * math.log10(peak), 2) if peak > 0 else None,
        )


def loudness_of(path: Path) -> Loudness:
    """Decode the audio file at `path` and measure it."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        meter = Meter.of_stream(stream)
        for frame in container.decode(stream):
            meter.add(frame)
        return meter.loudness()
