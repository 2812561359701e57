"""MP3 in and out through PyAV (FFmpeg's libraries, LAME for encoding)."""

import io
import math
from array import array
from collections.abc import Sequence

import av

RATE = 44_100
BIT_RATE = 128_000  # CBR: every browser plays it and seeks in it by byte offset
PEAK = 0.89  # -1 dBFS: room for the encoder's overshoot
TARGET_RMS = 0.16  # about -16 dBFS, so the six play at a similar loudness


def master(
    left: Sequence[float], right: Sequence[float], fade_out: float = 1.5
) -> tuple[list[float], list[float]]:
    """Bring a mix to a common loudness (never past PEAK), with fades at the ends."""
    peak = max(max(map(abs, left)), max(map(abs, right))) or 1.0
    rms = math.sqrt(
        (sum(x * x for x in left) + sum(x * x for x in right)) / 2 / len(left)
    )
    gain = min(TARGET_RMS / (rms or 1.0), PEAK / peak)
    frames, fade_in, fade_n = len(left), int(0.005 * RATE), int(fade_out * RATE)
    ramp = [
        gain * min(1.0, t / fade_in, (frames - 1 - t) / fade_n) for t in range(frames)
    ]
    return (
        [g * x for g, x in zip(ramp, left, strict=True)],
        [g * x for g, x in zip(ramp, right, strict=True)],
    )


def encode(left: Sequence[float], right: Sequence[float], *, title: str) -> bytes:
    """Stereo float samples (-1..1) at RATE to a CBR MP3 with an Info header."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        container.metadata["title"] = title
        stream = container.add_stream("libmp3lame", rate=RATE, layout="stereo")
        stream.format = "fltp"
        stream.bit_rate = BIT_RATE
        size = 1152  # one MP3 frame
        for start in range(0, len(left), size):
            n = min(size, len(left) - start)
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=n)
            frame.sample_rate, frame.pts = RATE, start
            frame.planes[0].update(array("f", left[start : start + n]).tobytes())
            frame.planes[1].update(array("f", right[start : start + n]).tobytes())
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def decoded_seconds(data: bytes) -> float:
    """Length of the audio in `data`, by decoding every frame (not the header)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate
