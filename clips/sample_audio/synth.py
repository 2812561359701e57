"""Building blocks for the sample pieces: a stereo mix bus and a few instruments.

Standard library only and deterministic (fixed seeds): the same piece comes out of
every run. Plain Python is slow per sample, so instruments that are played again
and again are cached.
"""

import functools
import math
import random
from collections.abc import Sequence

RATE = 44_100
TAU = 2 * math.pi


def hz(midi: float) -> float:
    """Frequency of a MIDI note number (69 is A4, 440 Hz)."""
    return 440.0 * 2 ** ((midi - 69) / 12)


class Mix:
    """A stereo bus of `seconds`, into which mono or stereo sounds are mixed."""

    def __init__(self, seconds: float) -> None:
        self.frames = int(seconds * RATE)
        self.left = [0.0] * self.frames
        self.right = [0.0] * self.frames

    def add(
        self, at: float, sound: Sequence[float], gain: float = 1.0, pan: float = 0.0
    ) -> None:
        """Mix a mono sound in at `at` seconds; pan -1 (left) to 1 (right)."""
        angle = (pan + 1) * math.pi / 4  # equal power: the centre is not louder
        self.add_stereo(
            at, sound, sound, gain * math.cos(angle), gain * math.sin(angle)
        )

    def add_stereo(
        self,
        at: float,
        left: Sequence[float],
        right: Sequence[float],
        gain_left: float = 1.0,
        gain_right: float = 1.0,
    ) -> None:
        offset = round(at * RATE)
        for channel, sound, gain in (
            (self.left, left, gain_left),
            (self.right, right, gain_right),
        ):
            end = min(len(sound), self.frames - offset)
            for i in range(max(0, -offset), end):
                channel[offset + i] += gain * sound[i]

    def echo(
        self,
        at: float,
        sound: Sequence[float],
        *,
        gain: float,
        delay: float,
        feedback: float = 0.45,
        repeats: int = 4,
        pan: float = 0.0,
    ) -> None:
        """The sound, then repeats bouncing left and right (a ping-pong delay)."""
        self.add(at, sound, gain, pan)
        for k in range(1, repeats + 1):
            side = 0.7 if k % 2 else -0.7
            self.add(at + k * delay, sound, gain * feedback**k, side)


def envelope(frames: int, attack: float, release: float) -> list[float]:
    """Raised-cosine attack and release (seconds) over `frames` samples."""
    attack_n = max(1, int(attack * RATE))
    release_n = max(1, int(release * RATE))
    release_at = frames - release_n
    out = []
    for t in range(frames):
        value = 1.0
        if t < attack_n:
            value = 0.5 - 0.5 * math.cos(math.pi * t / attack_n)
        if t >= release_at:
            value *= max(
                0.0, 0.5 + 0.5 * math.cos(math.pi * (t - release_at) / release_n)
            )
        out.append(value)
    return out


def lowpass(sound: Sequence[float], cutoff: float | Sequence[float]) -> list[float]:
    """One-pole low-pass; `cutoff` in Hz, fixed or one value per sample (a sweep)."""
    out, state = [], 0.0
    if isinstance(cutoff, int | float):
        a = 1 - math.exp(-TAU * cutoff / RATE)
        for x in sound:
            state += a * (x - state)
            out.append(state)
        return out
    for x, fc in zip(sound, cutoff, strict=False):
        state += (1 - math.exp(-TAU * fc / RATE)) * (x - state)
        out.append(state)
    return out


def highpass(sound: Sequence[float], cutoff: float) -> list[float]:
    low = lowpass(sound, cutoff)
    return [x - y for x, y in zip(sound, low, strict=True)]


def noise(seed: int, seconds: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(int(seconds * RATE))]


def decay(sound: Sequence[float], seconds: float) -> list[float]:
    """Exponential fade, `seconds` to fall to 1/e."""
    k = math.exp(-1 / (seconds * RATE))
    out, gain = [], 1.0
    for x in sound:
        out.append(x * gain)
        gain *= k
    return out


# Drums


@functools.cache
def kick(seconds: float = 0.45) -> list[float]:
    """A sine whose pitch falls fast from 150 to 45 Hz, with a click on top."""
    phase, out = 0.0, []
    for t in range(int(seconds * RATE)):
        phase += TAU * (45 + 105 * math.exp(-t / (0.025 * RATE))) / RATE
        click = 0.3 * math.exp(-t / (0.002 * RATE))
        out.append((math.sin(phase) + click) * math.exp(-t / (0.16 * RATE)))
    return out


@functools.cache
def hat(seed: int, seconds: float = 0.06, tone: float = 7000) -> list[float]:
    """Closed (short) or open (long) hi-hat: high-passed noise."""
    return decay(highpass(noise(seed, seconds), tone), seconds / 4)


@functools.cache
def clap(seed: int) -> list[float]:
    """Three quick noise bursts then a short tail, band-limited like hands."""
    burst = lowpass(highpass(noise(seed, 0.25), 900), 5000)
    out = []
    for t, x in enumerate(burst):
        s = t / RATE
        flutter = max(math.exp(-((s - k * 0.011) % 1) / 0.004) for k in range(3))
        gain = flutter if s < 0.033 else 0.8 * math.exp(-(s - 0.033) / 0.06)
        out.append(2.2 * x * gain)
    return out


@functools.cache
def snare(seed: int) -> list[float]:
    body = [
        0.6 * math.sin(TAU * 185 * t / RATE) * math.exp(-t / (0.04 * RATE))
        for t in range(int(0.25 * RATE))
    ]
    rattle = decay(highpass(noise(seed, 0.25), 1500), 0.06)
    return [a + b for a, b in zip(body, rattle, strict=True)]


@functools.cache
def crash(seed: int, seconds: float = 2.5) -> list[float]:
    return decay(highpass(noise(seed, seconds), 4000), seconds / 3)


@functools.cache
def ride(seed: int) -> list[float]:
    """A bell of inharmonic partials over a wash of noise."""
    bell = [
        sum(
            a * math.sin(TAU * f * t / RATE)
            for f, a in ((2960, 0.5), (4180, 0.35), (5420, 0.25), (6740, 0.2))
        )
        for t in range(int(0.9 * RATE))
    ]
    wash = highpass(noise(seed, 0.9), 5000)
    return decay([0.5 * b + w for b, w in zip(bell, wash, strict=True)], 0.3)


# Pitched instruments


@functools.cache
def bell(midi: int, seconds: float = 3.0) -> list[float]:
    """Glassy bell: partials at bell-like ratios, the high ones dying first."""
    f = hz(midi)
    partials = ((1.0, 1.0, 1.2), (2.76, 0.4, 0.5), (5.4, 0.2, 0.25), (8.9, 0.1, 0.12))
    return [
        sum(
            a * math.sin(TAU * f * ratio * t / RATE) * math.exp(-t / (life * RATE))
            for ratio, a, life in partials
        )
        * min(1.0, t / 40)
        for t in range(int(seconds * RATE))
    ]


@functools.cache
def pad_voice(
    midi: int, seconds: float, detune: float, attack: float, release: float
) -> list[float]:
    """One side of a pad note: a sine and its soft octave, slowly breathing."""
    f = hz(midi) * (1 + detune)
    env = envelope(int(seconds * RATE), attack, release)
    breath = 3.0 + midi % 5  # seconds; notes breathe out of step with each other
    return [
        e
        * (0.8 + 0.2 * math.sin(TAU * t / RATE / breath + midi))
        * (math.sin(TAU * f * t / RATE) + 0.18 * math.sin(TAU * 2 * f * t / RATE))
        for t, e in enumerate(env)
    ]


@functools.cache
def pluck(
    midi: int, variant: int, seconds: float = 1.8, bright: float = 0.6
) -> list[float]:
    """Plucked string (Karplus-Strong), tuned with a fractional delay."""
    rng = random.Random(midi * 7 + variant)
    delay = RATE / hz(midi) - 0.5  # the averaging filter adds half a sample
    n, frac = int(delay), delay - int(delay)
    excitation = lowpass([rng.uniform(-1, 1) for _ in range(n)], 1500 + 9000 * bright)
    total = int(seconds * RATE)
    out = [0.0] * total
    loss = 0.5 * (0.9985 - 0.0012 * (midi - 40) / 24)  # high strings die sooner
    a, b, c = loss * (1 - frac), loss, loss * frac
    for t in range(total):
        value = excitation[t] if t < n else 0.0
        if t >= n + 2:
            value += a * out[t - n] + b * out[t - n - 1] + c * out[t - n - 2]
        out[t] = value
    return lowpass(out, 4500)


@functools.cache
def piano(midi: int, hold: float, velocity: float = 0.8) -> list[float]:
    """Additive piano: slightly stretched partials, each decaying at its own rate,
    a felt thump at the start and the damper falling after `hold` seconds."""
    f = hz(midi)
    seconds = hold + 0.35
    life = 2.2 * 2 ** (-(midi - 60) / 24)  # low notes ring longer
    brightness = 0.5 + 0.6 * velocity
    partials = [
        (
            n * f * math.sqrt(1 + 0.0004 * n * n),
            brightness ** (n - 1) / n,
            life / (1 + 0.6 * (n - 1)),
        )
        for n in range(1, 8)
        if n * f < 9000
    ]
    out = []
    for t in range(int(seconds * RATE)):
        s = t / RATE
        damper = 1.0 if s < hold else math.exp(-(s - hold) / 0.07)
        value = sum(
            a * math.sin(TAU * freq * s) * math.exp(-s / partial_life)
            for freq, a, partial_life in partials
        )
        thump = 0.3 * math.sin(TAU * 2.3 * f * s) * math.exp(-s / 0.01)
        out.append(velocity * damper * min(1.0, t / 30) * (value + thump))
    return out


@functools.cache
def upright_bass(midi: int, seconds: float) -> list[float]:
    f = hz(midi)
    return [
        math.exp(-t / (0.7 * RATE))
        * min(1.0, t / 120)
        * min(1.0, (int(seconds * RATE) - t) / 600)
        * (
            math.sin(TAU * f * t / RATE)
            + 0.45 * math.sin(TAU * 2 * f * t / RATE) * math.exp(-t / (0.15 * RATE))
            + 0.2 * math.sin(TAU * 3 * f * t / RATE) * math.exp(-t / (0.08 * RATE))
        )
        for t in range(int(seconds * RATE))
    ]


def _saw(freq: float, frames: int) -> list[float]:
    step, phase, out = freq / RATE, 0.0, []
    for _ in range(frames):
        out.append(2 * phase - 1)
        phase = (phase + step) % 1.0
    return out


@functools.cache
def synth_bass(midi: int, seconds: float, cutoff: float = 500) -> list[float]:
    """A sawtooth through a low-pass, plucked: punchy, round sub bass."""
    frames = int(seconds * RATE)
    tone = lowpass(lowpass(_saw(hz(midi), frames), cutoff), cutoff * 1.5)
    sub = [math.sin(TAU * hz(midi) * t / RATE) for t in range(frames)]
    env = envelope(frames, 0.004, 0.03)
    return [e * (1.6 * x + 0.6 * y) for e, x, y in zip(env, tone, sub, strict=True)]


@functools.cache
def square_lead(midi: int, seconds: float = 0.22) -> list[float]:
    """A soft square (odd harmonics) with a quick pluck envelope, for arpeggios."""
    f = hz(midi)
    return [
        math.exp(-t / (0.07 * RATE))
        * min(1.0, t / 60)
        * sum(math.sin(TAU * k * f * t / RATE) / k for k in (1, 3, 5, 7))
        for t in range(int(seconds * RATE))
    ]


def chord_stab(
    chord: tuple[int, ...], seconds: float, cutoff: Sequence[float]
) -> list[list[float]]:
    """Detuned saws of a chord through a (swept) two-pole low-pass: left, right."""
    frames = int(seconds * RATE)
    sides = []
    for detune in (-0.004, 0.004):
        voices = [_saw(hz(midi) * (1 + detune), frames) for midi in chord]
        summed = [sum(values) / len(chord) for values in zip(*voices, strict=True)]
        sides.append(lowpass(lowpass(summed, cutoff), cutoff))
    return sides


@functools.cache
def riser(seconds: float, seed: int = 99) -> list[float]:
    """Noise that swells and brightens: the build-up before a drop."""
    frames = int(seconds * RATE)
    sweep = [300 + 9000 * (t / frames) ** 2 for t in range(frames)]
    swept = lowpass(noise(seed, seconds), sweep)
    return [x * (t / frames) ** 2 for t, x in enumerate(swept)]
