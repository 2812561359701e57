"""Synthesises the six sample clips' audio, so the project ships no binary files.

Deterministic (fixed seeds), standard library only: the same bytes on every machine,
which keeps the sizes in fixtures/sample_clips.json true.
"""

import functools
import io
import math
import random
import wave
from array import array
from collections.abc import Callable
from pathlib import Path

RATE = 22_050
SECONDS = 6.0
N = int(RATE * SECONDS)
TAU = 2 * math.pi


def _note(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _add(buf: list[float], start: float, samples: list[float]) -> None:
    offset = int(start * RATE)
    for i, value in enumerate(samples[: max(0, N - offset)]):
        buf[offset + i] += value


def _decaying_tone(
    freq: float, seconds: float, decay: float, partials=(1.0,)
) -> list[float]:
    return [
        math.exp(-decay * t / RATE)
        * sum(
            a * math.sin(TAU * freq * (k + 1) * t / RATE)
            for k, a in enumerate(partials)
        )
        for t in range(int(seconds * RATE))
    ]


def _kick(seconds: float = 0.35) -> list[float]:
    phase, out = 0.0, []
    for t in range(int(seconds * RATE)):
        freq = 45 + 110 * math.exp(-t / (0.03 * RATE))
        phase += TAU * freq / RATE
        out.append(math.sin(phase) * math.exp(-t / (0.12 * RATE)))
    return out


def _noise_burst(rng: random.Random, seconds: float, decay: float) -> list[float]:
    out, previous = [], 0.0
    for t in range(int(seconds * RATE)):
        white = rng.uniform(-1, 1)
        out.append((white - previous) * math.exp(-decay * t / RATE))  # high-passed
        previous = white
    return out


def ambient() -> list[float]:
    buf = [0.0] * N
    chord = [57, 60, 64, 67, 71]  # A minor 9
    for i, midi in enumerate(chord):
        freq = _note(midi)
        for t in range(N):
            swell = 0.5 + 0.5 * math.sin(TAU * (0.11 + 0.03 * i) * t / RATE + i)
            buf[t] += (
                0.18
                * swell
                * (
                    math.sin(TAU * freq * t / RATE)
                    + 0.5 * math.sin(TAU * freq * 1.003 * t / RATE)
                )
            )
    return buf


def electronic_beats() -> list[float]:
    rng, buf, beat = random.Random(2), [0.0] * N, 60 / 120
    for b in range(int(SECONDS / beat)):
        _add(buf, b * beat, _kick())
        _add(buf, b * beat + beat / 2, [0.3 * s for s in _noise_burst(rng, 0.08, 60)])
        bass = _note(33 + (0, 0, 3, 5)[b % 4])
        _add(buf, b * beat + beat / 2, _decaying_tone(bass, 0.2, 12, (0.5, 0.25, 0.12)))
    return buf


def _pluck(rng: random.Random, freq: float, seconds: float) -> list[float]:
    """Karplus-Strong: noise in a damped delay line sounds like a plucked string."""
    period = max(2, int(RATE / freq))
    line = [rng.uniform(-1, 1) for _ in range(period)]
    out = []
    for t in range(int(seconds * RATE)):
        value = line[t % period]
        line[t % period] = 0.996 * 0.5 * (value + line[(t + 1) % period])
        out.append(value)
    return out


def acoustic_guitar() -> list[float]:
    rng, buf = random.Random(3), [0.0] * N
    chords = [[40, 47, 52, 56, 59, 64], [45, 52, 57, 61, 64], [47, 54, 59, 63, 66]]
    for bar, chord in enumerate(chords * 2):
        for i, midi in enumerate(chord):
            _add(
                buf,
                bar * 1.0 + i * 0.06,
                [0.35 * s for s in _pluck(rng, _note(midi), 1.2)],
            )
    return buf


def rain() -> list[float]:
    rng, buf, low = random.Random(4), [0.0] * N, 0.0
    for t in range(N):
        low += 0.08 * (rng.uniform(-1, 1) - low)  # one-pole low-pass: a steady hiss
        buf[t] = 0.9 * low
    for _ in range(140):
        start = rng.uniform(0, SECONDS - 0.05)
        drop = _decaying_tone(rng.uniform(1800, 4200), 0.03, 180)
        _add(buf, start, [rng.uniform(0.1, 0.35) * s for s in drop])
    return buf


def jazz_piano() -> list[float]:
    buf = [0.0] * N
    progression = [[50, 53, 57, 60], [43, 53, 55, 59], [48, 52, 55, 59]]  # ii-V-I in C
    timbre = (1.0, 0.45, 0.2, 0.1)
    for bar, chord in enumerate(progression * 2):
        for i, midi in enumerate(chord):
            _add(
                buf,
                bar * 1.0 + i * 0.015,
                [0.16 * s for s in _decaying_tone(_note(midi), 0.95, 3.5, timbre)],
            )
    return buf


def tech_house() -> list[float]:
    rng, buf, beat = random.Random(6), [0.0] * N, 60 / 124
    for b in range(int(SECONDS / beat)):
        _add(buf, b * beat, _kick())
        _add(buf, b * beat + beat / 2, [0.35 * s for s in _noise_burst(rng, 0.18, 18)])
        if b % 2:
            _add(buf, b * beat, [0.4 * s for s in _noise_burst(rng, 0.12, 30)])
        for step in (0.25, 0.75):
            bass = _note(36 + (0, 7, 10, 7)[b % 4])
            _add(
                buf, b * beat + step * beat, _decaying_tone(bass, 0.12, 20, (0.6, 0.3))
            )
    return buf


SAMPLES: dict[str, Callable[[], list[float]]] = {
    "ambient.wav": ambient,
    "electronic-beats.wav": electronic_beats,
    "acoustic-guitar.wav": acoustic_guitar,
    "rain.wav": rain,
    "jazz-piano.wav": jazz_piano,
    "tech-house.wav": tech_house,
}


def render_wav(samples: list[float]) -> bytes:
    """16-bit mono WAV, normalised to -1 dBFS with 20 ms fades so nothing clicks."""
    peak = max(abs(s) for s in samples) or 1.0
    fade = int(0.02 * RATE)
    pcm = array("h")
    for t, value in enumerate(samples):
        gain = min(1.0, t / fade, (len(samples) - 1 - t) / fade)
        pcm.append(int(32767 * 0.89 * gain * value / peak))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


@functools.cache
def sample_wav(name: str) -> bytes:
    return render_wav(SAMPLES[name]())


def write_samples(directory: Path) -> list[Path]:
    """Write the six sample WAVs into `directory`, skipping any already there."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SAMPLES:
        path = directory / name
        if not path.exists():
            path.write_bytes(sample_wav(name))
            written.append(path)
    return written
