"""Reading audio: probe, loudness, energy and waveform peaks, in one decoding pass.

Plain typed functions of files, with no models: clips.ingest.pipeline decides what
a clip becomes from their answers, and clips.tasks runs that in the background.
"""

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np

from clips.ingest.loudness import Loudness, Meter

# Waveform: this many (min, max) pairs per clip, 8-bit, BBC audiowaveform's format
# (https://github.com/bbc/audiowaveform/blob/master/doc/DataFormat.md, version 2).
WAVEFORM_BUCKETS = 800
# Fewer of the same peaks, for pages that draw a waveform for every clip they list.
PEAKS_SUMMARY_BUCKETS = 100
_PEAK_BLOCK = 32  # samples per first-pass min/max: 800 buckets from 0.6 s at 44.1 kHz
# The mono mix's mean square per block of this many seconds: where the excerpt goes.
ENERGY_BLOCK_SECONDS = 0.1

# Content types by FFmpeg's demuxer names: what the bytes are, not the file's name.
_CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "webm": "audio/webm",
    "matroska,webm": "audio/webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4",
}


class AudioRefused(Exception):
    """The file cannot become a clip; the message says why, for curators."""


class NotAudio(AudioRefused):
    """The file does not decode as audio."""


class TooLong(AudioRefused):
    """Audio longer than a clip may be: said by its header, or found decoding it."""

    def __init__(self, seconds: float | None, *, limit: float) -> None:
        length = "Longer" if seconds is None else f"{seconds:.0f} s long"
        super().__init__(f"{length}: clips are limited to {limit:.0f} s.")


@dataclass(frozen=True)
class AudioFacts:
    duration: float  # seconds of decoded samples, not the header's claim
    container: str
    codec: str
    content_type: str
    sample_rate: int
    channels: int
    bit_rate: int | None  # bits per second: declared, else worked out from the size


@dataclass(frozen=True)
class Waveform:
    sample_rate: int
    samples_per_pixel: int
    data: list[int]  # min0, max0, min1, max1, ... in -128..127

    def as_json(self) -> dict:
        """BBC audiowaveform's JSON (version 2, one channel, 8 bits)."""
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 8,
            "length": len(self.data) // 2,
            "data": self.data,
        }


@dataclass(frozen=True)
class Analysis:
    facts: AudioFacts
    waveform: Waveform
    loudness: Loudness
    energy: np.ndarray  # mean square of the mono mix per ENERGY_BLOCK_SECONDS


def content_type_of(container: str) -> str:
    """The content type of FFmpeg's demuxer name (Ogg holds Vorbis, Opus, FLAC)."""
    if container == "ogg":
        return "audio/ogg"
    return _CONTENT_TYPES.get(container, "application/octet-stream")


def analyse(source: Path, *, max_seconds: float = math.inf) -> Analysis:
    """Decode `source` once: its facts, loudness, energy and peaks.

    Raises NotAudio when it is not audio, or is cut short of what it declares, and
    TooLong past max_seconds: before decoding when its header says so, else as
    soon as the decoded samples pass it, so a small file of hours of silence
    costs seconds of a worker.
    """
    try:
        with av.open(str(source), metadata_errors="ignore") as container:
            return _analyse(container, source, max_seconds)
    except av.error.FFmpegError as error:
        raise NotAudio(f"Not readable as audio: {error.strerror}.") from error


def _analyse(container, source: Path, max_seconds: float) -> Analysis:
    if not container.streams.audio:
        raise NotAudio("No audio stream in this file.")
    stream = container.streams.audio[0]
    rate, channels = stream.rate, stream.channels
    if not rate or not channels:
        raise NotAudio("The audio stream has no sample rate or channels.")
    declared = (container.duration or 0) / 1_000_000  # microseconds; 0: unknown
    # The header's length may be an estimate (from the bit rate): a little over
    # the limit is left for the decoded samples to decide.
    if declared > max_seconds + max(1.0, max_seconds * 0.02):
        raise TooLong(declared, limit=max_seconds)
    peaks = _Peaks(energy_block=max(1, round(rate * ENERGY_BLOCK_SECONDS)))
    mono = av.AudioResampler(format="s16", layout="mono", rate=rate)
    meter = Meter.of_stream(stream)
    samples, max_samples = 0, max_seconds * rate
    for frame in container.decode(stream):
        samples += frame.samples
        if samples > max_samples:
            raise TooLong(None, limit=max_seconds)
        meter.add(frame)
        frame.pts = None  # the resampler numbers its output itself
        for mixed in mono.resample(frame):
            peaks.add(mixed)
    if samples == 0:
        raise NotAudio("No audio samples decoded.")
    duration = samples / rate
    _check_complete(container, source, duration)
    declared = stream.bit_rate or container.bit_rate
    facts = AudioFacts(
        duration=round(duration, 3),
        container=container.format.name,
        codec=stream.codec_context.codec.canonical_name,
        content_type=content_type_of(container.format.name),
        sample_rate=rate,
        channels=channels,
        bit_rate=declared or round(source.stat().st_size * 8 / duration),
    )
    return Analysis(
        facts=facts,
        waveform=peaks.waveform(rate=rate),
        loudness=meter.loudness(),
        energy=peaks.energy(),
    )


def _check_complete(container, source: Path, duration: float) -> None:
    """A file cut short decodes as far as it goes: compare with what it declares."""
    if container.format.name == "wav":
        # FFmpeg works a WAV's length out from the file's size; the RIFF header
        # says what the whole file was.
        with source.open("rb") as audio:
            header = audio.read(8)
        declared_bytes = struct.unpack("<I", header[4:8])[0] + 8
        actual = source.stat().st_size
        if header[:4] == b"RIFF" and actual < declared_bytes:
            raise NotAudio(
                f"Truncated: {actual} of the {declared_bytes} bytes its header gives."
            )
    elif container.duration:  # microseconds, from the header (e.g. MP3's Xing frame)
        declared = container.duration / 1_000_000
        if duration < declared - max(0.5, declared * 0.02):
            raise NotAudio(
                f"Truncated: {duration:.1f} s decoded of the {declared:.1f} s "
                "its header declares."
            )


class _Peaks:
    """Min and max of every _PEAK_BLOCK mono samples, merged into buckets at the end,
    and the mean square of every `energy_block` samples.

    numpy does the per-sample work: a Python loop over blocks took a second of a
    3-minute clip's ingest, as much as decoding and probing together.
    """

    def __init__(self, *, energy_block: int) -> None:
        self._mins: list[np.ndarray] = []
        self._maxs: list[np.ndarray] = []
        self._carry = np.empty(0, dtype=np.int16)
        self._samples = 0
        self._energy_block = energy_block
        self._energies: list[np.ndarray] = []
        self._energy_carry = np.empty(0, dtype=np.float64)

    def add(self, frame: av.AudioFrame) -> None:
        values = frame.to_ndarray().reshape(-1)[: frame.samples]
        self._samples += frame.samples
        self._energy_add(values)
        if self._carry.size:
            values = np.concatenate((self._carry, values))
        whole = values.size - values.size % _PEAK_BLOCK
        blocks = values[:whole].reshape(-1, _PEAK_BLOCK)
        self._mins.append(blocks.min(axis=1))
        self._maxs.append(blocks.max(axis=1))
        self._carry = values[whole:]

    def _energy_add(self, values: np.ndarray) -> None:
        squares = np.concatenate((self._energy_carry, np.square(values / 32768.0)))
        whole = squares.size - squares.size % self._energy_block
        self._energies.append(squares[:whole].reshape(-1, self._energy_block).mean(1))
        self._energy_carry = squares[whole:]

    def energy(self) -> np.ndarray:
        parts = self._energies
        if self._energy_carry.size:
            parts = [*parts, self._energy_carry.mean(keepdims=True)]
        return np.concatenate(parts) if parts else np.empty(0)

    def waveform(self, *, rate: int) -> Waveform:
        if self._carry.size:
            self._mins.append(self._carry.min(keepdims=True))
            self._maxs.append(self._carry.max(keepdims=True))
            self._carry = self._carry[:0]
        empty = np.empty(0, np.int16)
        mins = np.concatenate(self._mins) if self._mins else empty
        maxs = np.concatenate(self._maxs) if self._maxs else empty
        data = _merged(mins, maxs, WAVEFORM_BUCKETS) >> 8
        return Waveform(
            sample_rate=rate,
            samples_per_pixel=max(1, round(self._samples / max(data.size // 2, 1))),
            data=data.tolist(),
        )


def _merged(mins: np.ndarray, maxs: np.ndarray, buckets: int) -> np.ndarray:
    """At most `buckets` (min, max) pairs, interleaved: the min of their mins, the
    max of their maxes, over runs of blocks as even as the count allows."""
    count = min(buckets, mins.size)
    data = np.empty(2 * count, dtype=mins.dtype)
    if count:
        starts = np.arange(count) * mins.size // count
        data[0::2] = np.minimum.reduceat(mins, starts)
        data[1::2] = np.maximum.reduceat(maxs, starts)
    return data


def peaks_summary(data: list[int], buckets: int = PEAKS_SUMMARY_BUCKETS) -> list[int]:
    """A waveform's peaks (min0, max0, min1, ...) in fewer buckets, for listings."""
    peaks = np.asarray(data, dtype=np.int16)
    return _merged(peaks[0::2], peaks[1::2], buckets).tolist()


def waveform_dumps(waveform: Waveform) -> bytes:
    return json.dumps(waveform.as_json(), separators=(",", ":")).encode()
