"""The six sample pieces, each about half a minute with a beginning, a middle and
an end, so a listener has something to seek through."""

import math
import random
from collections.abc import Callable

from clips.sample_audio.mp3 import encode, master
from clips.sample_audio.synth import (
    RATE,
    Mix,
    bell,
    chord_stab,
    clap,
    crash,
    decay,
    hat,
    kick,
    lowpass,
    noise,
    pad_voice,
    piano,
    pluck,
    ride,
    riser,
    snare,
    square_lead,
    synth_bass,
    upright_bass,
)


def ambient() -> Mix:
    """i - VI - iv - i in A minor on a breathing pad, glass bells echoing over it."""
    mix = Mix(26.0)
    chords = [
        (45, 57, 60, 64, 67, 71),  # Am9
        (41, 53, 57, 60, 64, 67),  # Fmaj9
        (38, 53, 57, 60, 64, 69),  # Dm9 (add 11)
        (45, 57, 60, 64, 67, 72),  # Am(add 9), closing up on C
    ]
    for i, chord in enumerate(chords):
        at, seconds = i * 6.0, 9.0 if i < 3 else 8.0
        for midi in chord:
            gain = 0.16 if midi > 50 else 0.24
            left = pad_voice(midi, seconds, -0.0015, 2.5, 3.0)
            right = pad_voice(midi, seconds, 0.0015, 2.5, 3.0)
            mix.add_stereo(at, left, right, gain, gain)
    rng = random.Random(1)
    pentatonic = (81, 84, 86, 88, 91, 93)  # A minor pentatonic, high
    at = 2.5
    while at < 21.5:
        mix.echo(
            at,
            bell(rng.choice(pentatonic)),
            gain=0.1,
            delay=0.45,
            feedback=0.5,
            repeats=5,
            pan=rng.uniform(-0.6, 0.6),
        )
        at += rng.choice((1.5, 2.0, 2.5, 3.0))
    return mix


def electronic_beats() -> Mix:
    """120 BPM in A minor: kick and bass, then hats, claps and an echoing arpeggio;
    a one-bar breakdown with a snare roll, and back in."""
    beat = 0.5
    bar = 4 * beat
    mix = Mix(13 * bar + 1.6)
    progression = [(45, 48, 52), (41, 45, 48), (48, 52, 55), (43, 47, 50)]  # Am F C G
    for b in range(13):
        chord = progression[b % 4]
        start = b * bar
        breakdown = b == 9
        for q in range(4):
            at = start + q * beat
            if not breakdown:
                mix.add(at, kick(), 0.9)
            if b >= 2:
                mix.add(at + beat / 2, hat(q + b), 0.28 if q % 2 else 0.22, 0.25)
            if b >= 4 and q in (1, 3) and not breakdown:
                mix.add(at, clap(b % 3), 0.35)
            for eighth in (0, 1):
                root = chord[0] - 12
                midi = root + (12 if (q + eighth) % 3 == 2 else 0)
                gain = 0.35 if breakdown else 0.5
                mix.add(at + eighth * beat / 2, synth_bass(midi, 0.2), gain)
        if b >= 6:
            tones = [*chord, chord[0] + 12] if b < 10 else [*chord, chord[2] + 12]
            for s in range(16):
                midi = tones[s % 4] + 12 + (12 if b >= 10 and s % 8 == 7 else 0)
                gain = 0.05 if breakdown else 0.09
                mix.echo(
                    start + s * beat / 4,
                    square_lead(midi),
                    gain=gain,
                    delay=3 * beat / 4,
                    feedback=0.35,
                    repeats=2,
                    pan=-0.3 if s % 2 else 0.3,
                )
        if breakdown:
            for s in range(8):  # snare roll over the last two beats
                mix.add(start + 2 * beat + s * beat / 4, snare(s), 0.1 + 0.04 * s)
    mix.add(13 * bar, kick(), 0.9)
    mix.add(13 * bar, crash(1), 0.25)
    mix.add(13 * bar, synth_bass(33, 0.5), 0.6)
    return mix


def acoustic_guitar() -> Mix:
    """90 BPM in E: fingerpicked arpeggios, a strummed verse, picking again, and a
    last chord left to ring."""
    beat = 60 / 90
    bar = 4 * beat
    E = (40, 47, 52, 56, 59, 64)
    A = (45, 52, 57, 61, 64)
    B = (47, 54, 59, 63, 66)
    Csm = (49, 56, 61, 64, 68)
    B7 = (47, 51, 57, 59, 66)
    bars = [E, A, B, E, Csm, A, B7, E]
    mix = Mix(len(bars) * bar + 3.2)

    def string(chord: tuple[int, ...], index: int, at: float, gain: float, n: int):
        midi = chord[index]
        pan = -0.45 + 0.9 * (midi - 40) / 28  # low strings left, high strings right
        mix.add(at, pluck(midi, n % 3), gain, pan)

    picking = (0, 3, 2, 4, 1, 3, 2, 4)  # strings, one per eighth note
    for b, chord in enumerate(bars):
        start = b * bar
        if 4 <= b < 7:  # strummed: down, down, up, up, down, up
            for n, (eighth, down) in enumerate(
                ((0, True), (2, True), (3, False), (5, False), (6, True), (7, False))
            ):
                strings = range(len(chord)) if down else range(len(chord) - 1, 0, -1)
                gain = 0.3 if down else 0.2
                for k, index in enumerate(strings):
                    string(chord, index, start + eighth * beat / 2 + k * 0.012, gain, n)
        else:
            for eighth, index in enumerate(picking):
                index = min(index, len(chord) - 1)
                gain = 0.42 if eighth == 0 else 0.32
                string(chord, index, start + eighth * beat / 2, gain, eighth)
    end = len(bars) * bar
    for index in range(len(E)):  # the last E, strummed slowly
        string(E, index, end + index * 0.035, 0.32, index)
    return mix


def rain() -> Mix:
    """Rain that swells and eases, drops close by, a gutter dripping on the left,
    and thunder rolling past in the distance."""
    seconds = 26.0
    mix = Mix(seconds)
    frames = mix.frames
    rng = random.Random(4)
    phases = [rng.uniform(0, math.tau) for _ in range(2)]

    def intensity(s: float) -> float:
        return (
            0.62
            + 0.22 * math.sin(0.23 * s + phases[0])
            + 0.12 * math.sin(0.61 * s + phases[1])
        )

    levels = [intensity(t / RATE) for t in range(frames)]
    for seed, pan in ((41, -1.0), (42, 1.0)):  # two uncorrelated sides: width
        hiss = noise(seed, seconds)
        body = lowpass(hiss, 700)
        sizzle = lowpass([a - b for a, b in zip(hiss, body, strict=True)], 6000)
        wash = [
            lv * (1.1 * b + 0.35 * s)
            for lv, b, s in zip(levels, body, sizzle, strict=True)
        ]
        mix.add(0, wash, 0.8, pan)
    at = 0.0
    while at < seconds - 0.1:  # drops: more of them when the rain is heavier
        freq = rng.uniform(1400, 4200)
        drop = [
            _chirp_sample(freq, t) for t in range(int(rng.uniform(0.012, 0.03) * RATE))
        ]
        mix.add(at, drop, rng.uniform(0.05, 0.22) * intensity(at), rng.uniform(-1, 1))
        at += rng.expovariate(26 * intensity(at))
    at = 3.0
    while at < seconds - 1:  # the gutter
        drip = decay([_chirp_sample(720, t, rise=0.6) for t in range(4000)], 0.04)
        mix.echo(at, drip, gain=0.3, delay=0.11, feedback=0.3, repeats=2, pan=-0.65)
        at += rng.uniform(0.75, 1.05)
    for at, gain, seconds_long in ((10.0, 1.6, 7.0), (19.5, 0.9, 5.5)):
        rumble = lowpass(lowpass(noise(int(at), seconds_long), 90), 140)
        swell = [
            min(1.0, t / (0.6 * RATE)) * (1 - t / len(rumble)) ** 2
            for t in range(len(rumble))
        ]
        left = [gain * 4 * x * e for x, e in zip(rumble, swell, strict=True)]
        right = [0.0] * 2000 + left[:-2000]  # a little later on the right: wide
        mix.add_stereo(at, left, right)
    return mix


def _chirp_sample(freq: float, t: int, rise: float = 1.5) -> float:
    """A water drop rings a tiny bubble: a sine rising fast in pitch, dying fast."""
    s = t / RATE
    return math.sin(math.tau * freq * s * (1 + rise * s * 20)) * math.exp(-s / 0.008)


def jazz_piano() -> Mix:
    """A swung trio at 100 BPM: walking bass, ride cymbal, rootless comping and a
    right-hand line over ii-V-I in C, ending on a rolled C major 9."""
    beat = 0.6
    bar = 4 * beat
    swing = 2 / 3  # the off-beat eighth falls two-thirds through the beat
    # (bass root, bass third, left-hand voicing) per half bar
    chords = {
        "C": (36, 4, (52, 55, 59, 62)),
        "Dm": (38, 3, (53, 57, 60, 64)),
        "G": (43, 4, (53, 57, 59, 64)),
        "G7b9": (43, 4, (53, 56, 59, 62)),
        "A7": (45, 4, (55, 58, 61, 64)),
        "Em": (40, 3, (50, 55, 59, 62)),
    }
    chart = "C | Dm | G | C | A7 | Dm | G7b9 | Em A7 | Dm G | C"
    form = [bar.split() for bar in chart.split("|")]
    o = swing  # the swung off-beat, for short
    # (beat, length in beats, note) per bar
    # fmt: off
    melody = [
        [(2, 0.6, 67), (2 + o, 0.3, 69), (3, 0.6, 71), (3 + o, 0.3, 74)],
        [(0, 1.2, 76), (1 + o, 0.3, 72), (2, 0.6, 74), (2 + o, 0.3, 72), (3, 1, 69)],
        [(0, 0.6, 71), (o, 0.3, 69), (1, 0.6, 67), (1 + o, 0.3, 65), (2, 1.8, 64)],
        [(o, 0.3, 67), (1, 0.6, 71), (1 + o, 0.3, 74), (2, 1.6, 76)],
        [(0, 0.6, 73), (o, 0.3, 70), (1, 0.6, 69), (1 + o, 0.3, 67), (2, 1, 64),
         (3 + o, 0.3, 69)],
        [(0, 1.4, 77), (1 + o, 0.3, 69), (2, 0.6, 72), (2 + o, 0.3, 74), (3, 0.9, 77)],
        [(0, 0.6, 80), (o, 0.3, 77), (1, 0.6, 74), (1 + o, 0.3, 71), (2, 0.9, 68),
         (3, 0.9, 67)],
        [(0, 1, 64), (1 + o, 0.3, 67), (2, 0.6, 73), (2 + o, 0.3, 71), (3, 0.9, 69)],
        [(0, 0.6, 65), (o, 0.3, 69), (1, 0.6, 72), (1 + o, 0.3, 76), (2, 0.6, 77),
         (2 + o, 0.3, 76), (3, 0.9, 74)],
        [(0, 1.4, 76), (1 + o, 0.3, 74), (2, 0.6, 71), (2 + o, 0.3, 69), (3, 0.9, 67)],
    ]
    # fmt: on
    mix = Mix(len(form) * bar + 3.5)
    rng = random.Random(5)
    comp_rhythms = [
        ((0, 0.5), (1 + swing, 0.9)),
        ((1, 0.4), (3, 0.5)),
        ((swing, 0.6), (2 + swing, 0.8)),
    ]
    for b, (names, line) in enumerate(zip(form, melody, strict=True)):
        start = b * bar
        half = len(names) == 2
        for q in range(4):  # walking bass
            root, third, _ = chords[names[q // 2 if half else 0]]
            nxt = chords[form[(b + 1) % len(form)][0]][0]
            note = (root, root + third, root + 7, nxt + (1 if b % 2 else -1))[q]
            if half:
                note = (root, root + 7)[q % 2]
            mix.add(start + q * beat, upright_bass(note, beat * 0.95), 0.3, -0.05)
        for q in range(4):  # ride: ding, ding-a ding, ding-a
            mix.add(start + q * beat, ride(q % 3), 0.07, 0.45)
            if q % 2:
                mix.add(start + (q + swing) * beat, ride(3), 0.045, 0.45)
        for i, name in enumerate(names):
            voicing = chords[name][2]
            rhythm = ((0, 1.2),) if half else rng.choice(comp_rhythms)
            for at_beat, hold_beats in rhythm:
                at = start + (2 * i + at_beat) * beat
                for k, midi in enumerate(voicing):
                    mix.add(
                        at + 0.008 * k,
                        piano(midi, hold_beats * beat, 0.55),
                        0.15,
                        -0.25,
                    )
        for at_beat, length, midi in line:
            velocity = 0.75 + 0.05 * ((midi + b) % 4)
            mix.add(
                start + at_beat * beat, piano(midi, length * beat, velocity), 0.3, 0.25
            )
    end = len(form) * bar
    final = (36, 43, 52, 55, 59, 62, 64, 67, 71, 76)
    for k, midi in enumerate(final):  # the rolled last chord
        pan = -0.4 + 0.8 * k / len(final)
        mix.add(end + 0.045 * k, piano(midi, 2.6, 0.6), 0.13, pan)
    mix.add(end, upright_bass(36, 3.0), 0.3)
    mix.add(end, ride(4), 0.07, 0.45)
    return mix


def tech_house() -> Mix:
    """124 BPM in C minor: kick and hats, then the rolling bass and claps, a
    breakdown with a filter sweep and a riser, and the drop with chord stabs."""
    beat = 60 / 124
    bar = 4 * beat
    mix = Mix(14 * bar + 1.4)
    stab = (60, 63, 67, 70)  # Cm7
    bass_roots = [36, 36, 36, 39] * 3 + [44, 46]  # C C C Eb, then Ab Bb to the end
    for b in range(14):
        start = b * bar
        breakdown = b in (6, 7)
        drop = b >= 8
        for q in range(4):
            at = start + q * beat
            if not breakdown:
                mix.add(at, kick(), 1.0)
            for s in range(4):  # closed hats on the 16ths, accented off-beat
                gain = (0.08, 0.05, 0.16, 0.05)[s] * (0.6 if b < 2 else 1.0)
                mix.add(at + s * beat / 4, hat(10 + s, 0.04, 8000), gain, 0.3)
            if b >= 2 and not breakdown:
                mix.add(at + beat / 2, hat(20 + q, 0.35, 6000), 0.16, -0.2)
            if b >= 2 and q in (1, 3):
                mix.add(at, clap(q), 0.4 if not breakdown else 0.25, 0.05)
            if drop:
                for s in (1, 3):  # shaker
                    mix.add(at + s * beat / 4, hat(30 + s, 0.08, 4500), 0.07, -0.5)
            if b >= 2 and not breakdown:  # rolling bass on the off 16ths
                root = bass_roots[b]
                for s, interval in ((1, 0), (2, 12), (3, 0)):
                    mix.add(
                        at + s * beat / 4,
                        synth_bass(root + interval, beat / 5, 420),
                        0.42,
                    )
        if breakdown:
            frames = int(2 * bar * RATE) if b == 6 else 0
            if frames:
                sweep = [250 + 4200 * (t / frames) ** 1.5 for t in range(frames)]
                left, right = chord_stab(stab, 2 * bar, sweep)
                mix.add_stereo(start, left, right, 0.45, 0.45)
                mix.add(start + bar, riser(bar), 0.3)
        if drop:
            for q in (0, 2):  # stabs on the "and" of 1 and 3, echoing
                at = start + (q + 0.5) * beat
                left, _ = chord_stab(stab, beat / 3, [2600] * int(beat / 3 * RATE))
                mix.echo(
                    at, left, gain=0.32, delay=3 * beat / 4, feedback=0.4, repeats=3
                )
    end = 14 * bar
    mix.add(end, kick(), 1.0)
    mix.add(end, crash(2), 0.3)
    mix.add(end, synth_bass(36, 0.6, 420), 0.5)
    return mix


PIECES: dict[str, Callable[[], Mix]] = {
    "ambient": ambient,
    "electronic-beats": electronic_beats,
    "acoustic-guitar": acoustic_guitar,
    "rain": rain,
    "jazz-piano": jazz_piano,
    "tech-house": tech_house,
}


def render(name: str) -> bytes:
    """The named piece as the MP3 bytes shipped in clips/sample_audio/<name>.mp3."""
    mix = PIECES[name]()
    left, right = master(mix.left, mix.right)
    return encode(left, right, title=name.replace("-", " ").capitalize())
