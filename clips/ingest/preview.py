"""The preview: an excerpt of the original at one loudness, as MP3 and Ogg Opus.

The excerpt's samples are decoded once more (seeking to it), measured, given the
gain that brings them to the target loudness, faded where they cut the original,
limited so that no true peak passes the ceiling, and encoded twice: MP3 by LAME
(lameenc, LAME's own build: the PyAV wheel's is a third of its speed) and Opus by
PyAV's libopus. Each file is measured again, decoded as a listener's player
decodes it; a file over the ceiling or off the target is rendered again.
"""

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import lameenc
import numpy as np

from clips.ingest.loudness import Loudness, Meter, loudness_of

RATE = 48_000  # both encoders' rate: Opus knows no other, MP3 carries it
MP3_BIT_RATE = 128_000  # CBR, so that a byte offset is a time
MP3_QUALITY = 3  # LAME's -q 3: its speed at near its best quality
OPUS_BIT_RATE = 96_000
TRUE_PEAK_CEILING_DBTP = -1.0
# A near-silent recording is not raised past this: its noise would become loud.
MAX_GAIN_DB = 24.0
FADE_IN_SECONDS = 0.5  # where the excerpt starts inside the original
FADE_OUT_SECONDS = 1.5  # where it stops before the original's end
# What a rendered file may miss the target by before it is rendered again.
LOUDNESS_TOLERANCE_LU = 0.5
_RENDERS = 3
# Part of every recipe: raised when the rendering changes, so that
# `manage.py render_previews` renders every preview again.
RENDER_VERSION = 1
_FRAME = 4096  # samples per frame handed to the filters and encoders


@dataclass(frozen=True)
class Excerpt:
    start: float  # seconds into the original
    duration: float


@dataclass(frozen=True)
class Format:
    name: str  # the rendition's name and the stream's ?format=
    codec: str
    content_type: str
    extension: str
    bit_rate: int


MP3 = Format("preview", "mp3", "audio/mpeg", ".mp3", MP3_BIT_RATE)
OPUS = Format("opus", "opus", 'audio/ogg; codecs="opus"', ".opus", OPUS_BIT_RATE)
FORMATS = (MP3, OPUS)


@dataclass(frozen=True)
class Rendered:
    format: Format
    path: Path
    loudness: Loudness  # of the file, decoded


def excerpt_of(*, length: float, start: float, seconds: float) -> Excerpt:
    """The excerpt of `seconds` from `start` (clipped to the audio's `length`)."""
    start = min(max(0.0, start), max(0.0, length - 0.1))
    return Excerpt(
        start=round(start, 3), duration=round(min(seconds, length - start), 3)
    )


def recipe(
    *, audio_digest: str, excerpt: Excerpt, target_lufs: float, format: Format
) -> str:
    """What makes a preview: the same recipe renders the same file."""
    made_of = (
        f"{RENDER_VERSION}:{audio_digest}:{excerpt.start:.3f}:{excerpt.duration:.3f}:"
        f"{target_lufs:.2f}:{format.codec}:{format.bit_rate}"
    )
    return hashlib.sha256(made_of.encode()).hexdigest()


def loudest_start(energy: np.ndarray, *, block_seconds: float, seconds: float) -> float:
    """Where the window of `seconds` with the most energy starts.

    `energy` is the mean square of each block of the original; the first of equal
    windows wins, and a clip no longer than the window starts at 0.
    """
    blocks = max(1, round(seconds / block_seconds))
    if energy.size <= blocks:
        return 0.0
    sums = np.cumsum(np.concatenate(([0.0], energy.astype(np.float64))))
    windows = sums[blocks:] - sums[:-blocks]
    # Equal but for the sums' rounding: the first.
    first = np.argmax(windows >= windows.max() * (1 - 1e-9))
    return round(int(first) * block_seconds, 3)


def preview_render(
    source: Path, *, excerpt: Excerpt, length: float, target_lufs: float, work: Path
) -> list[Rendered]:
    """Render `excerpt` of the audio at `source` (`length` seconds in all) in every
    format, at `target_lufs` with true peaks at most TRUE_PEAK_CEILING_DBTP."""
    samples, layout = _excerpt_decode(source, excerpt)
    _fade(samples, excerpt, length)
    measured = _measure(samples, layout)
    gain = 0.0 if measured.lufs is None else target_lufs - measured.lufs
    gain = min(gain, MAX_GAIN_DB)
    ceiling = TRUE_PEAK_CEILING_DBTP - 0.5  # encoding adds a little to the peaks
    for _ in range(_RENDERS):
        limited = _limited(samples * _linear(gain), layout, ceiling)
        rendered = _encode(limited, layout, work)
        over = max(_peak(each) for each in rendered) - TRUE_PEAK_CEILING_DBTP
        misses = _misses(rendered, target_lufs) or [0.0]
        # The formats differ a little (LAME cuts the highest band, which BS.1770
        # counts): one gain centres them on the target, and a gain that would
        # move them less than a tenth of a decibel gains nothing.
        off = sum(misses) / len(misses)
        close = max(map(abs, misses)) <= LOUDNESS_TOLERANCE_LU or abs(off) < 0.1
        if over > 0:
            ceiling -= over + 0.1
        elif close or gain >= MAX_GAIN_DB:
            break
        if not close:
            gain = min(gain - off, MAX_GAIN_DB)
    return rendered


def _misses(rendered: list[Rendered], target_lufs: float) -> list[float]:
    return [
        each.loudness.lufs - target_lufs
        for each in rendered
        if each.loudness.lufs is not None
    ]


def _linear(decibels: float) -> float:
    return 10 ** (decibels / 20)


def _peak(rendered: Rendered) -> float:
    peak = rendered.loudness.true_peak_dbtp
    return -math.inf if peak is None else peak


def _excerpt_decode(source: Path, excerpt: Excerpt) -> tuple[np.ndarray, str]:
    """The excerpt's samples at RATE, as float32 (channels, samples): mono stays
    mono, anything else becomes stereo."""
    with av.open(str(source), metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        layout = "mono" if stream.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
        first = round(excerpt.start * RATE)
        wanted = max(1, round(excerpt.duration * RATE))
        if excerpt.start > 0:
            container.seek(int(excerpt.start / stream.time_base), stream=stream)
        chunks, position = [], None
        for frame in container.decode(stream):
            if position is None:
                # Where decoding resumed; a seek lands on or before the excerpt.
                position = round((frame.time or 0.0) * RATE) if excerpt.start > 0 else 0
            frame.pts = None
            for resampled in resampler.resample(frame):
                position = _keep(chunks, resampled.to_ndarray(), position, first)
            if sum(chunk.shape[1] for chunk in chunks) >= wanted:
                break
        else:
            for resampled in resampler.resample(None):
                position = _keep(chunks, resampled.to_ndarray(), position or 0, first)
    channels = 1 if layout == "mono" else 2
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0))
    return np.ascontiguousarray(samples[:, :wanted], dtype=np.float32), layout


def _keep(chunks: list, values: np.ndarray, position: int, first: int) -> int:
    """Keep what of `values` (starting at sample `position`) lies from `first` on."""
    skip = max(0, first - position)
    if skip < values.shape[1]:
        chunks.append(values[:, skip:])
    return position + values.shape[1]


def _fade(samples: np.ndarray, excerpt: Excerpt, length: float) -> None:
    """Fade in where the excerpt starts inside the original, out where it ends
    before it: a cut mid-note clicks, a clip's own start and end are left alone."""
    count = samples.shape[1]
    if excerpt.start > 0:
        fade = min(count, round(FADE_IN_SECONDS * RATE))
        samples[:, :fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
    if excerpt.start + excerpt.duration < length - 0.05:
        fade = min(count, round(FADE_OUT_SECONDS * RATE))
        samples[:, count - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)


def _frames(samples: np.ndarray, layout: str):
    for start in range(0, samples.shape[1], _FRAME):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, start : start + _FRAME]),
            format="fltp",
            layout=layout,
        )
        frame.sample_rate = RATE
        yield frame


def _measure(samples: np.ndarray, layout: str) -> Loudness:
    meter = Meter(rate=RATE, layout=layout, format="fltp")
    for frame in _frames(samples, layout):
        meter.add(frame)
    return meter.loudness()


def _limited(samples: np.ndarray, layout: str, ceiling_dbtp: float) -> np.ndarray:
    """FFmpeg's look-ahead limiter: no sample over the ceiling, the timing kept."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(
        format="fltp", sample_rate=RATE, layout=layout, time_base=f"1/{RATE}"
    )
    limiter = graph.add(
        "alimiter",
        f"limit={_linear(ceiling_dbtp):.6f}:attack=5:release=50:level=0:latency=1",
    )
    planar = graph.add("aformat", "sample_fmts=fltp")  # it works in packed doubles
    sink = graph.add("abuffersink")
    source.link_to(limiter)
    limiter.link_to(planar)
    planar.link_to(sink)
    graph.configure()
    out = []
    for frame in [*_frames(samples, layout), None]:
        graph.push(frame)
        while True:
            try:
                out.append(graph.pull().to_ndarray())
            except (av.error.BlockingIOError, av.error.EOFError):
                break
    limited = np.concatenate(out, axis=1) if out else samples
    return np.clip(limited[:, : samples.shape[1]], -1.0, 1.0, dtype=np.float32)


def _encode(samples: np.ndarray, layout: str, work: Path) -> list[Rendered]:
    mp3 = work / f"preview{MP3.extension}"
    opus = work / f"preview{OPUS.extension}"
    _mp3_write(samples, mp3)
    _opus_write(samples, layout, opus)
    return [
        Rendered(format=MP3, path=mp3, loudness=loudness_of(mp3)),
        Rendered(format=OPUS, path=opus, loudness=loudness_of(opus)),
    ]


def _mp3_write(samples: np.ndarray, path: Path) -> None:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(MP3_BIT_RATE // 1000)
    encoder.set_in_sample_rate(RATE)
    encoder.set_channels(samples.shape[0])
    encoder.set_quality(MP3_QUALITY)
    pcm = (samples.T * 32767).round().astype("<i2").tobytes()
    path.write_bytes(bytes(encoder.encode(pcm)) + bytes(encoder.flush()))


def _opus_write(samples: np.ndarray, layout: str, path: Path) -> None:
    # bitexact: a fixed stream serial, so the same audio makes the same file.
    with av.open(
        str(path), "w", format="ogg", container_options={"fflags": "+bitexact"}
    ) as container:
        stream = container.add_stream("libopus", rate=RATE)
        stream.layout = layout
        stream.bit_rate = OPUS_BIT_RATE
        for frame in _frames(samples, layout):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
