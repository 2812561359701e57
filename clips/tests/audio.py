"""Real audio for tests, made with PyAV: a tone in each container the ingest reads."""

import io
import math
import wave
from array import array

import av
import numpy as np

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


def sections(parts: list[tuple[float, float | None]], *, rate: int = 48_000) -> bytes:
    """A stereo 16-bit WAV of consecutive parts, each (seconds, level): a chord of
    220 and 330 Hz whose peak is `level` dBFS, or silence for None."""
    chunks = []
    for seconds, level in parts:
        t = np.arange(round(seconds * rate)) / rate
        if level is None:
            chunks.append(np.zeros_like(t))
            continue
        chord = np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 330 * t)
        chunks.append(chord / np.abs(chord).max() * 10 ** (level / 20))
    return wav_of(np.concatenate(chunks), rate=rate)


def wav_of(mono: np.ndarray, *, rate: int = 48_000) -> bytes:
    """A stereo 16-bit WAV with `mono` (-1..1) in both channels."""
    pcm = (np.repeat(mono[:, None], 2, axis=1) * 32767).round().astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


def samples_of(data: bytes) -> tuple[np.ndarray, int]:
    """The decoded mono mix of `data` (float, -1..1) and its sample rate."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        mono = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        frames = [
            mixed.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            for mixed in mono.resample(frame)
        ]
        return np.concatenate(frames), stream.rate
