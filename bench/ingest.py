"""The ingest of a 3-minute WAV against the ffmpeg command line: one command.

    .venv/bin/python bench/ingest.py [--runs 3] [--quick]
                                     [--out bench/ingest-results.md]

Makes a 3-minute 44.1 kHz stereo WAV (--quick: 20 seconds; a tone on one channel,
noise on the other, with ffmpeg's lavfi sources), then times, each in a fresh
process pinned to one core and the best of --runs (--quick: 1):

- the reference, as the issue states it: `ffmpeg -threads 1 -i in.wav -c:a
  libmp3lame -b:a 128k a.mp3 -c:a libopus -b:a 96k b.opus`, both renditions of the
  whole file in one command;
- what a worker does with new audio: clips.ingest.analysis.analyse (one decode:
  probe, loudness, energy, peaks), then preview.loudest_start, excerpt_of and
  preview_render of the 30-second excerpt (decoded again, gain, fades, limiter,
  MP3 by lameenc and Opus by PyAV, each file decoded and measured, rendered again
  when off target). Its ratio to the reference is the goal;
- the same with the whole file as the excerpt: ours not helped by encoding only
  30 seconds, so that the encoders are compared on the same work (no goal);
- analyse alone, and preview_render alone (timed inside the two runs above), to
  tell which part costs what; the label says how many renders it took;
- the whole ingest as the service runs it: clips.services.clip_create of the WAV as
  an upload (eager, no broker), storage copy, digest, analysis, previews and
  waveform stored, on a SQLite database of its own.

Prints a table and writes bench/ingest-results.md. Needs ffmpeg (apt).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness import (
    BENCH,
    ROOT,
    command_line,
    ensure_tools,
    fresh_directory,
    load_average,
    publish,
    table,
    verdict,
)

T = TypeVar("T")

OUT = BENCH / "out-ingest"
SECONDS = 180  # of the WAV; --quick: QUICK_SECONDS
QUICK_SECONDS = 20
PREVIEW_SECONDS = 30  # settings.CLIPS_PREVIEW_SECONDS's default
TARGET_LUFS = -16.0  # settings.CLIPS_PREVIEW_LUFS's default
GOAL = 0.8  # analysis + 30 s preview at this fraction of ffmpeg's speed, or more

# Each timed step: a Python snippet run in a fresh interpreter (argv[1] the WAV,
# argv[2] a scratch directory) that prints its own wall time, so that start-up and
# imports are not counted, as they are not for a worker that is already running.
_ANALYSE = """
import sys, time
from pathlib import Path
from clips.ingest.analysis import analyse
started = time.perf_counter()
analyse(Path(sys.argv[1]))
print(time.perf_counter() - started)
"""
# The worker's steps of clips.ingest.pipeline.clip_ingest, without the storage and
# the database; prints JSON: the wall time of all, of the render, the renders done
# (preview._encode's calls, counted) and what the files measure.
_PREVIEW = """
import json, sys, time
from pathlib import Path
from clips.ingest import analysis, preview
encode, renders = preview._encode, []
preview._encode = lambda *args: renders.append(1) or encode(*args)
source, work = Path(sys.argv[1]), Path(sys.argv[2]) / {work!r}
work.mkdir(exist_ok=True)
started = time.perf_counter()
analysed = analysis.analyse(source)
length = analysed.facts.duration
start = preview.loudest_start(
    analysed.energy, block_seconds=analysis.ENERGY_BLOCK_SECONDS, seconds={seconds}
)
excerpt = (
    preview.Excerpt(0.0, length) if {whole}
    else preview.excerpt_of(length=length, start=start, seconds={seconds})
)
rendering = time.perf_counter()
rendered = preview.preview_render(
    source, excerpt=excerpt, length=length, target_lufs={target}, work=work
)
done = time.perf_counter()
print(json.dumps({{
    "total": done - started,
    "render": done - rendering,
    "renders": len(renders),
    "excerpt": [excerpt.start, excerpt.duration],
    "files": {{
        each.format.codec: [each.path.stat().st_size, each.loudness.lufs,
                            each.loudness.true_peak_dbtp]
        for each in rendered
    }},
}}))
"""
_SERVICE = """
import os, sys, time
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from clips import services
call_command("migrate", verbosity=0)
upload = SimpleUploadedFile("long.wav", open(sys.argv[1], "rb").read(), "audio/wav")
started = time.perf_counter()
clip = services.clip_create(title="Bench", genre="ambient", duration={seconds},
                            audio_file=upload)
elapsed = time.perf_counter() - started
clip.refresh_from_db()
assert clip.status == "ready", (clip.status, clip.failure_reason)
names = set(clip.renditions.values_list("name", flat=True))
assert names == {{"preview", "opus", "waveform"}}, names
print(elapsed)
"""


def main() -> None:
    args = command_line(
        __doc__,
        BENCH / "ingest-results.md",
        OUT,
        more=lambda parser: parser.add_argument(
            "--runs", type=int, help="runs of each step, the best counts (3)"
        ),
        wrk_runs=False,
    )
    runs = args.runs or (1 if args.quick else 3)
    length = QUICK_SECONDS if args.quick else SECONDS
    ensure_tools("ffmpeg")
    fresh_directory(OUT)
    wav = OUT / "long.wav"
    _make_wav(wav, length)
    load = load_average()

    def best(label: str, step: Callable[[], float]) -> float:
        return min(_runs(label, runs, step))

    def preview_best(label: str, whole: bool) -> dict:
        """The best of the runs' wall times, all and render alone, apart."""
        code = _PREVIEW.format(
            work=label, whole=whole, seconds=PREVIEW_SECONDS, target=TARGET_LUFS
        )
        done = _runs(label, runs, lambda: json.loads(_python(code, wav)))
        best_total = min(done, key=lambda run: run["total"])
        renders = sorted({run["renders"] for run in done})
        return {
            **best_total,
            "render": min(run["render"] for run in done),
            "renders": "/".join(map(str, renders)),
        }

    ffmpeg = best("ffmpeg", lambda: _ffmpeg(wav))
    excerpt = preview_best("excerpt", whole=False)
    whole = preview_best("whole", whole=True)
    analyse = best("analyse", lambda: float(_python(_ANALYSE, wav)))
    service_code = _SERVICE.format(seconds=length)
    service = best(
        "service", lambda: float(_python(service_code, wav, env=_service_env()))
    )
    rows = [
        (
            "ffmpeg -threads 1: MP3 128k + Opus 96k of the whole file, one command"
            " (the reference)",
            ffmpeg,
            "",
        ),
        (
            f"Clips: analyse + {PREVIEW_SECONDS} s preview (MP3 + Opus), as a worker"
            " does",
            excerpt["total"],
            _goal(ffmpeg, excerpt["total"]),
        ),
        (
            "Clips: analyse + the whole file as the preview (MP3 + Opus)",
            whole["total"],
            f"{ffmpeg / whole['total']:.2f} of ffmpeg's speed: whole file as the"
            " preview, no goal",
        ),
        ("Clips: analyse alone: probe + loudness + energy + peaks", analyse, ""),
        (
            f"Clips: preview_render alone, {PREVIEW_SECONDS} s excerpt"
            f" ({excerpt['renders']} renders)",
            excerpt["render"],
            "",
        ),
        (
            f"Clips: preview_render alone, whole file ({whole['renders']} renders)",
            whole["render"],
            "",
        ),
        ("Clips: whole ingest of an upload (clip_create, eager)", service, ""),
    ]

    publish(args.out, *_report(rows, ffmpeg, wav, length, excerpt, runs, load))


def _runs(label: str, runs: int, step: Callable[[], T]) -> list[T]:
    """Every run's answer, the progress on stderr."""
    done = []
    for run in range(runs):
        print(f"  {label}: run {run + 1}/{runs}", file=sys.stderr, flush=True)
        done.append(step())
    return done


def _make_wav(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
         "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.1",
         "-filter_complex", "amerge=inputs=2", "-ar", "44100", "-c:a", "pcm_s16le",
         str(path)],
        check=True,
    )  # fmt: skip


def _one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _ffmpeg(wav: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(wav),
         "-c:a", "libmp3lame", "-b:a", "128k", str(OUT / "ffmpeg.mp3"),
         "-c:a", "libopus", "-b:a", "96k", str(OUT / "ffmpeg.opus")],
        check=True,
        preexec_fn=_one_core,
    )  # fmt: skip
    return time.perf_counter() - started


def _python(code: str, wav: Path, env: dict[str, str] | None = None) -> str:
    """The last line a snippet prints, run on one core."""
    scratch = OUT / "scratch"
    scratch.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", code, str(wav), str(scratch)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=_one_core,
    )
    return done.stdout.strip().splitlines()[-1]


def _service_env() -> dict[str, str]:
    site = OUT / "site"
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir()
    return {
        "DJANGO_SETTINGS_MODULE": "clips_project.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{site / 'db.sqlite3'}",
        "MEDIA_ROOT": str(site / "media"),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "CLIPS_PREVIEW_SECONDS": str(PREVIEW_SECONDS),
        "CLIPS_PREVIEW_LUFS": str(TARGET_LUFS),
    }


def _goal(ffmpeg: float, ours: float) -> str:
    ratio = ffmpeg / ours
    return f"{ratio:.2f} of ffmpeg's speed (goal >= {GOAL}): {verdict(ratio >= GOAL)}"


def _report(
    rows, ffmpeg: float, wav: Path, length: int, excerpt: dict, runs: int, load: str
):
    """The run's head, the table of steps, and the previews' sizes and loudness."""
    original = wav.stat().st_size
    long = f"{length // 60}-minute" if length % 60 == 0 else f"{length}-second"
    header = ["step", "wall time", "realtime", "vs ffmpeg", "goal"]
    steps = [
        [
            label,
            f"{seconds:.2f} s",
            f"{length / seconds:.0f}x",
            f"{ffmpeg / seconds:.2f}",
            goal,
        ]
        for label, seconds, goal in rows
    ]
    start, duration = excerpt["excerpt"]
    files = "; ".join(
        f"{codec.upper() if codec == 'mp3' else codec.title()} {size / 1e6:.2f} MB"
        f" ({100 * size / original:.1f}% of the original), {lufs} LUFS,"
        f" {peak} dBTP"
        for codec, (size, lufs, peak) in excerpt["files"].items()
    )
    return (
        f"{long} 44.1 kHz stereo WAV ({original / 1e6:.1f} MB), one core, best of"
        f" {runs} runs each, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
        f" load average (1, 5, 15 min) at start {load}, at end {load_average()}.",
        table(header, steps),
        f"Preview ({duration:g} s from {start:g} s, target {TARGET_LUFS:g} LUFS,"
        f" {excerpt['renders']} renders): {files}.",
    )


if __name__ == "__main__":
    main()
