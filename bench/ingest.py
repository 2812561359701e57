"""The ingest of a 3-minute WAV against the ffmpeg command line: one command.

    .venv/bin/python bench/ingest.py [--runs 3] [--quick]
                                     [--out bench/ingest-results.md]

Makes a 3-minute 44.1 kHz stereo WAV (--quick: 20 seconds; a tone on one channel,
noise on the other, with ffmpeg's lavfi sources), then times, each in a fresh
process pinned to one core and the best of --runs (--quick: 1):

- ffmpeg's command line transcoding it to MP3 at 128 kbps (the reference);
- clips.ingest.analysis.analyse: probe, MP3 preview and waveform peaks in one pass;
- the same without the preview (probe and peaks: what a re-ingest of a clip whose
  preview exists would cost, and the part this code adds to the transcode);
- PyAV transcoding alone, as ffmpeg does, to tell the library from this code;
- the same PyAV transcode, and the same analysis, with Debian's libmp3lame in
  place of the wheel's (a diagnosis, in a copy of the package under
  bench/out-ingest/; skipped when Debian's libmp3lame0 is missing);
- the whole ingest as the service runs it: clips.services.clip_create of the WAV as
  an upload (eager, no broker), storage copy, digest, analysis, renditions stored,
  on a SQLite database of its own.

Prints a table and writes bench/ingest-results.md. Needs ffmpeg (apt).
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    BENCH,
    ROOT,
    command_line,
    ensure_tools,
    fresh_directory,
    publish,
    table,
    verdict,
)

OUT = BENCH / "out-ingest"
SECONDS = 180  # of the WAV; --quick: QUICK_SECONDS
QUICK_SECONDS = 20
GOAL = 0.8  # probe + MP3 + peaks at this fraction of ffmpeg's transcode speed, or more
DEBIAN_LAME = Path("/usr/lib/x86_64-linux-gnu/libmp3lame.so.0")

# Each timed step: a Python snippet run in a fresh interpreter (argv[1] the WAV,
# argv[2] a scratch directory) that prints its own wall time, so that start-up and
# imports are not counted, as they are not for a worker that is already running.
_ANALYSE = """
import sys, time
from pathlib import Path
from clips.ingest.analysis import analyse
started = time.perf_counter()
analyse(Path(sys.argv[1]), preview={preview})
print(time.perf_counter() - started)
"""
_TRANSCODE = """
import sys, time
import av
started = time.perf_counter()
with av.open(sys.argv[1]) as source, av.open(sys.argv[2] + "/pyav.mp3", "w") as out:
    stream = out.add_stream("libmp3lame", rate=44100)
    stream.layout, stream.bit_rate = "stereo", 128_000
    resampler = av.AudioResampler(format="s16p", layout="stereo", rate=44100)
    for frame in source.decode(audio=0):
        frame.pts = None
        for resampled in resampler.resample(frame):
            out.mux(stream.encode(resampled))
    out.mux(stream.encode(None))
print(time.perf_counter() - started)
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
clip = services.clip_create(title="Bench", genre="ambient", duration=180,
                            audio_file=upload)
elapsed = time.perf_counter() - started
clip.refresh_from_db()
assert clip.status == "ready", (clip.status, clip.failure_reason)
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

    def best(label: str, step) -> float:
        times = []
        for run in range(runs):
            print(f"  {label}: run {run + 1}/{runs}", file=sys.stderr, flush=True)
            times.append(step())
        return min(times)

    ffmpeg = best("ffmpeg", lambda: _ffmpeg(wav))
    rows = [("ffmpeg -threads 1, MP3 128 kbps (the reference)", ffmpeg, "")]
    preview = f"Path(sys.argv[2]) / {'preview.mp3'!r}"
    analysis = best("analyse", lambda: _python(_ANALYSE.format(preview=preview), wav))
    goal = _goal(ffmpeg, analysis)
    rows.append(("Clips: probe + MP3 preview + peaks, one pass", analysis, goal))
    probe = best("probe", lambda: _python(_ANALYSE.format(preview=None), wav))
    rows.append(("Clips: probe + peaks, no preview", probe, ""))
    pyav = best("pyav", lambda: _python(_TRANSCODE, wav))
    rows.append(("PyAV transcode alone (the wheel's LAME)", pyav, ""))
    if DEBIAN_LAME.exists():
        env = {"PYTHONPATH": str(_av_with_debian_lame())}
        debian = best("pyav+debian", lambda: _python(_TRANSCODE, wav, env=env))
        rows.append(("PyAV transcode alone, Debian's libmp3lame in", debian, ""))
        code = _ANALYSE.format(preview=preview)
        ours = best("analyse+debian", lambda: _python(code, wav, env=env))
        rows.append(
            (
                "Clips: probe + preview + peaks, Debian's libmp3lame in",
                ours,
                _goal(ffmpeg, ours),
            )
        )
    service = best("service", lambda: _python(_SERVICE, wav, env=_service_env()))
    rows.append(("Clips: whole ingest of an upload (clip_create, eager)", service, ""))

    preview_size = (OUT / "scratch" / "preview.mp3").stat().st_size
    sizes = (wav.stat().st_size, preview_size)
    publish(args.out, *_report(rows, ffmpeg, length, sizes, runs))


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
         "-c:a", "libmp3lame", "-b:a", "128k", str(OUT / "ffmpeg.mp3")],
        check=True,
        preexec_fn=_one_core,
    )  # fmt: skip
    return time.perf_counter() - started


def _python(code: str, wav: Path, env: dict[str, str] | None = None) -> float:
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
    return float(done.stdout.strip().splitlines()[-1])


def _av_with_debian_lame() -> Path:
    """A copy of the installed PyAV whose bundled libmp3lame is Debian's."""
    import av

    installed = Path(av.__file__).parent
    copy = OUT / "av-debian-lame"
    shutil.copytree(installed, copy / "av")
    libs = copy / "av.libs"
    shutil.copytree(installed.parent / "av.libs", libs)
    (bundled,) = libs.glob("libmp3lame-*.so*")
    shutil.copyfile(DEBIAN_LAME.resolve(), bundled)
    return copy


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
    }


def _goal(ffmpeg: float, ours: float) -> str:
    ratio = ffmpeg / ours
    return f"{ratio:.2f} of ffmpeg's speed (goal >= {GOAL}): {verdict(ratio >= GOAL)}"


def _report(rows, ffmpeg: float, length: int, sizes: tuple[int, int], runs: int):
    """The run's head, the table of steps, and the preview's size."""
    original, preview = sizes
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
    return (
        f"{long} 44.1 kHz stereo WAV ({original / 1e6:.1f} MB), one core, best of"
        f" {runs} runs each, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        table(header, steps),
        f"Preview: {preview / 1e6:.2f} MB, {100 * preview / original:.1f}% of the"
        f" original's {original / 1e6:.1f} MB.",
    )


if __name__ == "__main__":
    main()
