"""Real audio for tests, made with PyAV: a tone in each container the ingest reads."""

import io
import math
from array import array

import av

# (container, encoder, sample rate): libopus takes 48 kHz only.
FORMATS = {
    "wav": ("wav", "pcm_s16le", 44_100),
    "mp3": ("mp3", "libmp3lame", 44_100),
    "ogg": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", 44_100),
}


def tone(
    extension: str = "wav",
    *,
    seconds: float = 2.0,
    channels: int = 2,
    amplitude: int = 16_000,
) -> bytes:
    """A 440 Hz tone (at half scale by default) in the format of `extension`."""
    container_format, codec, rate = FORMATS[extension]
    layout = "mono" if channels == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        total, size = round(seconds * rate), 960
        for start in range(0, total, size):
            count = min(size, total - start)
            wave = [
                round(amplitude * math.sin(2 * math.pi * 440 * t / rate))
                for t in range(start, start + count)
                for _ in range(channels)
            ]
            frame = av.AudioFrame(format="s16", layout=layout, samples=count)
            frame.sample_rate, frame.pts = rate, start
            frame.planes[0].update(array("h", wave).tobytes())
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def decoded(data: bytes) -> tuple[str, float]:
    """The container name and decoded length in seconds of `data`."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return container.format.name, samples / stream.rate
