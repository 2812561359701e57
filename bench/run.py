"""Clips under gunicorn and PostgreSQL, measured side by side with nginx: one command.

    .venv/bin/python bench/run.py [--seconds 8] [--before fdcb72e] [--out ...]

Creates and migrates its own database (clips_bench), starts gunicorn with the
production config (clips_project/gunicorn.py) and its own nginx, both on loopback,
runs wrk and a few Python clients against them, prints a table and writes
bench/results.md. The stream's request rate and CPU per request, counted and not
counted, are also measured on the code before the play rule (--before, checked out
into a temporary git worktree, with its own database clips_bench_before and the
same gunicorn config), side by side. Needs wrk, nginx and curl (Debian packages;
installed with apt when missing and run as root). Everything it starts, it stops.
"""

import argparse
import functools
import getpass
import http.client
import itertools
import operator
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MEDIA = OUT / "media"
HOST = "127.0.0.1"


def free_port(first: int) -> int:
    """The first port from `first` up that nothing on loopback holds.

    Loopback ports in 38000-38999 are also handed out as clients' source ports,
    so a fixed one is sometimes taken.
    """
    for port in range(first, 39_000):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        return port
    sys.exit("bench: no free port in 38000-38999")


APP_PORT = free_port(38_100)
NGINX_PORT = free_port(APP_PORT + 1)
BEFORE_PORT = free_port(NGINX_PORT + 1)
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/clips_bench"
)
BEFORE_DATABASE_URL = DATABASE_URL + "_before"
# The commit before the play rule of issue 9 (every GET from byte 0 counted).
BEFORE = "fdcb72e"
CATALOGUE_CLIPS = 1_000
MB = 1_000_000
STREAM_CLIP_BYTES = 5 * MB
BIG_CLIP_BYTES = 100 * MB
CONCURRENCY = (1, 16, 64)
LISTENERS = 64
LISTENS_EACH = 20
# The play rule's rows: many small requests, so the transfer does not hide their
# fixed cost. 4 KiB from byte 0 is a listen under both rules; the seek is the same
# size 1 MiB in.
RULE_CONNECTIONS = 16
LISTEN_RANGE = "bytes=0-4095"
SEEK_RANGE = "bytes=1048576-1052671"
# The rule may cost something, but not half of the stream's request rate.
RULE_MIN_RATIO = 0.5
TTFB_SAMPLES = 30
# Worker memory is flat if sending 6.4 GB grows it by less than this.
FLAT_RSS_MB = 10
# bench/results.md: the script rewrites what lies between these, keeps the rest.
BEGIN, END = "<!-- bench:start -->", "<!-- bench:end -->"

# The service's environment: production settings, loopback only, no TLS in front.
APP_ENV = {
    "DATABASE_URL": DATABASE_URL,
    "MEDIA_ROOT": str(MEDIA),
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-not-a-secret",
    "ALLOWED_HOSTS": HOST,
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_HSTS_SECONDS": "0",
    "LOG_LEVEL": "WARNING",
    "GUNICORN_BIND": f"{HOST}:{APP_PORT}",
    # Every client here is 127.0.0.1: per-address rate limits would answer 429,
    # and the cap per address would count few of its listeners.
    "CLIPS_THROTTLE_STREAM": "",
    "CLIPS_THROTTLE_WRITE": "",
    "CLIPS_PLAYS_PER_ADDRESS": "0",
}

NGINX_CONF = """\
{user}worker_processes auto;
pid {out}/nginx.pid;
error_log {out}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {out}/nginx-access.log;
    client_body_temp_path {out}/nginx-tmp;
    proxy_temp_path {out}/nginx-tmp;
    fastcgi_temp_path {out}/nginx-tmp;
    uwsgi_temp_path {out}/nginx-tmp;
    scgi_temp_path {out}/nginx-tmp;
    types {{ audio/wav wav; }}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    server {{
        listen {host}:{port};
        root {media};
    }}
}}
"""


@dataclass(frozen=True)
class Wrk:
    requests: int
    requests_per_second: float
    megabytes_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # Written, answered or not; only known with bench/listeners.lua.
    sent: int | None = None


@dataclass(frozen=True)
class Fixtures:
    list_url: str
    detail_url: str
    floor_url: str
    stream_url: str
    stream_clip_id: int
    static_url: str
    listen_url: str
    listen_clip_id: int
    big_url: str
    big_clip_id: int


@dataclass(frozen=True)
class Server:
    """One version of Clips under gunicorn: its stream URL and where it counts."""

    name: str
    master: int
    database_url: str
    stream_url: str
    stream_clip_id: int


@dataclass(frozen=True)
class Streams:
    """wrk runs on one server's stream endpoint, with the server's side of them."""

    runs: tuple[Wrk, ...]
    cpu_seconds: float
    plays: int

    def __add__(self, other: "Streams") -> "Streams":
        return Streams(
            runs=self.runs + other.runs,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            plays=self.plays + other.plays,
        )

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)

    @property
    def requests_per_second(self) -> float:
        seconds = sum(run.requests / run.requests_per_second for run in self.runs)
        return self.requests / seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.requests

    @property
    def sent(self) -> int:
        return sum(run.sent for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)


# --- setting up ---------------------------------------------------------------


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx", "curl") if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"bench: install {' '.join(missing)} (Debian packages) first")
    print(f"bench: installing {' '.join(missing)} with apt", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def setup_django() -> None:
    os.environ.update(APP_ENV)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clips_project.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def recreate_database(url: str) -> None:
    """Drop and create a bench database, so every run starts from the same state."""
    import psycopg

    name = database_name(url)
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def write_wav(path: Path, size: int) -> None:
    """A valid WAV of `size` bytes (silence after the header), written in blocks."""
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = (size - 44) // 2
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(22_050)
        block = b"\0" * 2 * 65_536
        while frames > 0:
            chunk = min(frames, 65_536)
            out.writeframes(block[: chunk * 2])
            frames -= chunk


def seed() -> Fixtures:
    """Migrate, load the samples, add a catalogue and the two big clips; ANALYZE."""
    from django.core.management import call_command

    from clips.models import Clip, Genre, PlayTotal

    call_command("migrate", verbosity=0)
    call_command("loaddata", "sample_clips", verbosity=0)
    samples = list(Clip.objects.order_by("pk"))
    genres = list(Genre.values)
    clips = Clip.objects.bulk_create(
        Clip(
            title=f"Catalogue clip {n}",
            description="A clip in a catalogue of a thousand, for the benchmark. " * 3,
            genre=genres[n % len(genres)],
            duration=sample.duration,
            audio_file=sample.audio_file.name,
            content_type=sample.content_type,
            size_bytes=sample.size_bytes,
        )
        for n, sample in zip(range(CATALOGUE_CLIPS), itertools.cycle(samples))
    )
    PlayTotal.objects.bulk_create(
        PlayTotal(clip=clip, play_count=n % 97) for n, clip in enumerate(clips[::2])
    )
    stream_clip = big_clip("bench/clip-5mb.wav", STREAM_CLIP_BYTES)
    big = big_clip("bench/clip-100mb.wav", BIG_CLIP_BYTES)
    analyze()
    app = f"http://{HOST}:{APP_PORT}/api/v1/clips"
    return Fixtures(
        list_url=app,
        detail_url=f"{app}/{samples[0].pk}",
        floor_url=f"http://{HOST}:{APP_PORT}/api/v1/nothing-here",
        stream_url=f"{app}/{stream_clip.pk}/stream",
        stream_clip_id=stream_clip.pk,
        static_url=f"http://{HOST}:{NGINX_PORT}/bench/clip-5mb.wav",
        listen_url=f"{app}/{samples[0].pk}/stream",
        listen_clip_id=samples[0].pk,
        big_url=f"{app}/{big.pk}/stream",
        big_clip_id=big.pk,
    )


def analyze() -> None:
    """Fresh planner statistics: autovacuum may not have seen the new rows yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def big_clip(name: str, size: int):
    """A WAV clip, with its digest (the ETag) worked out as an upload's is."""
    from clips.models import Clip
    from clips.services import clip_audio_digest

    write_wav(MEDIA / name, size)
    clip = Clip.objects.create(**big_clip_fields(name, size))
    clip_audio_digest(clip=clip)
    return clip


def big_clip_fields(name: str, size: int) -> dict:
    """A WAV clip's row, in fields that the code before the play rule has too."""
    return {
        "title": f"Benchmark {size // MB} MB",
        "genre": "other",
        "duration": min(3600, size / 44_100),
        "audio_file": name,
        "content_type": "audio/wav",
        "size_bytes": size,
    }


# Run by the code before the rule (manage.py shell -c): only what its stream needs.
SEED_BEFORE = """
from django.core.management import call_command
from django.db import connection
from clips.models import Clip
call_command("migrate", verbosity=0)
clip = Clip.objects.create(**{fields!r})
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
print(clip.pk)
"""


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A commit in a temporary git worktree, removed on exit."""
    path = Path(tempfile.mkdtemp(prefix="clips-bench-before-"))
    git("worktree", "add", "--quiet", "--detach", str(path), revision)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def seed_before(root: Path) -> int:
    """Its own database, migrated by that code, with the 5 MB clip; the clip's id."""
    recreate_database(BEFORE_DATABASE_URL)
    fields = big_clip_fields("bench/clip-5mb.wav", STREAM_CLIP_BYTES)
    output = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED_BEFORE.format(fields=fields)],
        cwd=root,
        env={**os.environ, **before_env()},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(output.split()[-1])


def before_env() -> dict[str, str]:
    return {
        **APP_ENV,
        "DATABASE_URL": BEFORE_DATABASE_URL,
        "GUNICORN_BIND": f"{HOST}:{BEFORE_PORT}",
    }


# --- the servers ---------------------------------------------------------------


@contextmanager
def running(
    command: list[str], log: Path, env: dict | None = None, cwd: Path = ROOT
) -> Iterator[int]:
    """Run a server in its own process group; stop it (and its workers) on exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def serving_before(root: Path, clip_id: int) -> Iterator[Server]:
    """The code before the play rule under the same gunicorn config, warmed up."""
    with running(
        gunicorn(), OUT / "gunicorn-before.log", before_env(), cwd=root
    ) as master:
        app = f"http://{HOST}:{BEFORE_PORT}/api/v1/clips"
        wait_until_up(app)
        server = Server(
            name="before",
            master=master,
            database_url=BEFORE_DATABASE_URL,
            stream_url=f"{app}/{clip_id}/stream",
            stream_clip_id=clip_id,
        )
        wrk(server.stream_url, 4, 2)
        yield server


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"bench: {url} did not come up; see {OUT}")


def gunicorn() -> list[str]:
    """The production config of this checkout, for whichever code runs in cwd."""
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "-c",
        str(ROOT / "clips_project" / "gunicorn.py"),
        "clips_project.wsgi",
    ]


def nginx() -> list[str]:
    (OUT / "nginx-tmp").mkdir(exist_ok=True)
    conf = OUT / "nginx.conf"
    # As root nginx's workers would run as nobody, who may not read our media.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    conf.write_text(
        NGINX_CONF.format(
            user=user, out=OUT, host=HOST, port=NGINX_PORT, media=MEDIA.resolve()
        )
    )
    return ["nginx", "-p", str(OUT), "-c", str(conf), "-g", "daemon off;"]


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text()
    return [int(pid) for pid in children.split()]


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # a worker recycled by max_requests
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a process (and of its exited children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = sum(map(int, fields[11:15] if children else fields[11:13]))
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(master: int, database_url: str = DATABASE_URL) -> float:
    """CPU used so far by gunicorn (master, workers, recycled workers) and by the
    PostgreSQL backends serving it: what a request costs, whatever else runs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [database_name(database_url)],
        )
        backends = [pid for (pid,) in cursor.fetchall()]
    return (
        cpu_seconds(master, children=True)
        + sum(cpu_seconds(pid) for pid in worker_pids(master))
        + sum(cpu_seconds(pid) for pid in backends)
    )


# --- measuring ----------------------------------------------------------------


_wrk_runs = itertools.count(1)


def wrk(
    url: str,
    connections: int,
    seconds: int,
    range_header: str = "",
    listeners: Literal["new", "same"] | None = None,
) -> Wrk:
    """wrk's figures; with `listeners`, each request from a new listener or all from
    the same one (bench/listeners.lua), who is new to the server in either case."""
    threads = min(2, connections)
    header = ["-H", f"Range: {range_header}"] if range_header else []
    script, script_args = [], []
    if listeners:
        script = ["-s", str(ROOT / "bench" / "listeners.lua")]
        script_args = ["--", f"bench-{os.getpid()}-{next(_wrk_runs)}", listeners]
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            *header,
            *script,
            url,
            *script_args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sent = re.search(r"requests sent: (\d+)", output)
    bad_status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    errors = int(bad_status[1]) if bad_status else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return Wrk(
        requests=int(re.search(r"(\d+) requests in", output)[1]),
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        megabytes_per_second=_megabytes(re.search(r"Transfer/sec:\s+(\S+)", output)[1]),
        p50_ms=_milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M)[1]),
        p99_ms=_milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M)[1]),
        errors=errors,
        sent=int(sent[1]) if sent else None,
    )


def _megabytes(value: str) -> float:
    """wrk's Transfer/sec (binary units) in MB/s (10**6 bytes)."""
    number, unit = re.fullmatch(r"([\d.]+)([KMG]?B)", value).groups()
    return float(number) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[unit] / MB


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def ttfb_ms(url: str) -> float:
    """Median time to first byte over fresh connections, as curl measures it."""
    samples = []
    for _ in range(TTFB_SAMPLES):
        output = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(float(output) * 1000)
    return statistics.median(samples)


def curl_together(commands: list[list[str]]) -> int:
    """Run curl commands all at once; how many failed."""
    curls = [subprocess.Popen(command) for command in commands]
    return sum(curl.wait() != 0 for curl in curls)


def listen(url: str, times: int, client: int) -> int:
    """One client playing a clip `times` times on one keep-alive connection, each
    time as a new listener (its own User-Agent), so that each listen counts."""
    host, port, path = _split(url)
    connection = http.client.HTTPConnection(host, port, timeout=60)
    complete = 0
    for n in range(times):
        connection.request("GET", path, headers={"User-Agent": f"bench-{client}-{n}"})
        response = connection.getresponse()
        body = response.read()
        expected = int(response.headers["Content-Length"])
        if response.status == 200 and len(body) == expected:
            complete += 1
    connection.close()
    return complete


def _split(url: str) -> tuple[str, int, str]:
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    return match[1], int(match[2]), match[3]


def plays_of(clip_id: int, database_url: str = DATABASE_URL) -> int:
    """The clip's play_count, in a table that both versions of the code share."""
    total = _connected(database_url).execute(
        "SELECT play_count FROM clips_playtotal WHERE clip_id = %s", [clip_id]
    )
    return (total.fetchone() or [0])[0]


@functools.cache
def _connected(database_url: str):
    """One connection per database for the whole run: no backend comes and goes
    while server_cpu_seconds sums theirs."""
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def sample_peak(pids: Callable[[], list[int]], stop: threading.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max([peak, *(rss_mb(pid) for pid in pids())])
        time.sleep(0.05)
    return peak


# --- the run ------------------------------------------------------------------

Row = list[str]


def row(measure: str, ours: str, theirs: str = "", ratio: str = "", notes: str = ""):
    return [measure, ours, theirs, ratio, notes]


def measure_streaming(fixtures: Fixtures, seconds: int) -> list[Row]:
    """A 5 MB clip from Clips and from nginx: whole (a listen), from byte 1 (a seek).

    Each request comes from a new listener, so that each listen counts.
    """
    rows = []
    cases = [("", "a listen: counted", 1), ("", "a listen: counted", 16)]
    cases.append(("bytes=1-", "a seek: not counted", 1))
    for range_header, what, connections in cases:
        ours = wrk(fixtures.stream_url, connections, seconds, range_header, "new")
        theirs = wrk(fixtures.static_url, connections, seconds, range_header, "new")
        rows.append(
            row(
                f"stream 5 MB, {connections} conn., {what}",
                f"{ours.megabytes_per_second:,.0f} MB/s",
                f"{theirs.megabytes_per_second:,.0f} MB/s",
                f"{ours.megabytes_per_second / theirs.megabytes_per_second:.0%}",
                f"p50 {ours.p50_ms:.1f} vs {theirs.p50_ms:.1f} ms; "
                f"errors {ours.errors}/{theirs.errors}",
            )
        )
    ours, theirs = ttfb_ms(fixtures.stream_url), ttfb_ms(fixtures.static_url)
    rows.append(
        row(
            "time to first byte, 5 MB",
            f"{ours:.2f} ms",
            f"{theirs:.2f} ms",
            f"{theirs / ours:.0%}",
            f"median of {TTFB_SAMPLES}, a new connection each (curl)",
        )
    )
    return rows


RULE_CASES: list[tuple[str, str, Literal["new", "same"]]] = [
    ("counted: a new listener each time", LISTEN_RANGE, "new"),
    ("not counted: the same listener again", LISTEN_RANGE, "same"),
    ("a seek: never counted", SEEK_RANGE, "new"),
]


def measure_rule(before: Server, after: Server, seconds: int) -> dict[str, dict]:
    """Each case of RULE_CASES on the code before the play rule and after it.

    Twice each, in the order before, after, after, before: a load that other work
    on the machine adds or takes away during a case weighs on both about alike.
    """
    results = {}
    for what, range_header, listeners in RULE_CASES:
        print(f"bench: stream, {what}: before and after the rule", flush=True)
        runs = {before.name: [], after.name: []}
        for server in (before, after, after, before):
            runs[server.name].append(streams(server, seconds, range_header, listeners))
        results[what] = {
            name: functools.reduce(operator.add, ran) for name, ran in runs.items()
        }
    return results


def streams(
    server: Server, seconds: int, range_header: str, listeners: Literal["new", "same"]
) -> Streams:
    """Small ranges of the 5 MB clip on 16 connections: the server's CPU and plays."""
    plays = plays_of(server.stream_clip_id, server.database_url)
    cpu = server_cpu_seconds(server.master, server.database_url)
    result = wrk(server.stream_url, RULE_CONNECTIONS, seconds, range_header, listeners)
    cpu = server_cpu_seconds(server.master, server.database_url) - cpu
    time.sleep(1)  # requests in flight when wrk stopped are counted by now
    return Streams(
        runs=(result,),
        cpu_seconds=cpu,
        plays=plays_of(server.stream_clip_id, server.database_url) - plays,
    )


def rule_tables(results: dict[str, dict]) -> tuple[list[Row], list[Row], list[Row]]:
    """The before/after table, the rule's CPU over a seek, and the two goals."""
    rows, ratios = [], []
    for what, ran in results.items():
        before, after = ran["before"], ran["after"]
        ratio = after.requests_per_second / before.requests_per_second
        ratios.append(ratio)
        rows.append(
            [
                what,
                _rate(before),
                _rate(after),
                f"{ratio:.0%}",
                f"{before.cpu_ms:.2f} -> {after.cpu_ms:.2f} ms",
                f"{_plays(before)}; {_plays(after)}",
                f"p50 {_p50s(before)} -> {_p50s(after)} ms; "
                f"errors {before.errors}/{after.errors}",
                _verdict(ratio >= RULE_MIN_RATIO),
            ]
        )
    counted, again, seek = results.values()
    cost = [
        [
            what,
            f"{ran['before'].cpu_ms - seek['before'].cpu_ms:+.2f} ms",
            f"{ran['after'].cpu_ms - seek['after'].cpu_ms:+.2f} ms",
        ]
        for what, ran in list(results.items())[:2]
    ]
    # Each wrk run's one listener is new to the server: it counts once per run.
    exact = (
        counted["after"].plays == counted["after"].sent
        and again["after"].plays == len(again["after"].runs)
        and seek["after"].plays == 0
    )
    goals = [
        [
            f"the play rule keeps >= {RULE_MIN_RATIO:.0%} of the stream's request "
            "rate (counted / not counted / seek, after / before)",
            " / ".join(f"{ratio:.0%}" for ratio in ratios),
            _verdict(min(ratios) >= RULE_MIN_RATIO),
        ],
        [
            "after: each new listener's request counted, the same listener once "
            "(per wrk run), no seek",
            f"{counted['after'].plays:,} of {counted['after'].sent:,} sent / "
            f"{again['after'].plays} / {seek['after'].plays}",
            _verdict(exact),
        ],
    ]
    return rows, cost, goals


def _rate(ran: Streams) -> str:
    """Requests per second over all runs, and each run's."""
    each = " / ".join(f"{run.requests_per_second:,.0f}" for run in ran.runs)
    return f"{ran.requests_per_second:,.0f} req/s ({each})"


def _plays(ran: Streams) -> str:
    return f"{ran.plays:,} of {ran.sent:,}"


def _p50s(ran: Streams) -> str:
    return ", ".join(f"{run.p50_ms:.1f}" for run in ran.runs)


def measure_api(
    fixtures: Fixtures, seconds: int, master: int
) -> tuple[list[Row], float]:
    """List and detail at 1, 16 and 64 connections; also the list's best req/s.

    Throughput depends on what else the machine runs; the server's CPU time per
    request does not, so it is reported too, with the rate it would allow if
    gunicorn and PostgreSQL had both cores to themselves.
    """
    rows, best_list = [], 0.0
    endpoints = [
        ("list", fixtures.list_url, CONCURRENCY),
        ("detail", fixtures.detail_url, CONCURRENCY),
        # No database, no DRF: middleware, URL resolving and a JSON 404.
        ("of an unknown path (the floor)", fixtures.floor_url, (16,)),
    ]
    for name, url, concurrency in endpoints:
        print(f"bench: GET {name}", flush=True)
        for connections in concurrency:
            cpu_before = server_cpu_seconds(master)
            result = wrk(url, connections, seconds)
            cpu_ms = (server_cpu_seconds(master) - cpu_before) * 1000 / result.requests
            if name == "list":
                best_list = max(best_list, result.requests_per_second)
            rows.append(
                row(
                    f"GET {name}, {connections} conn.",
                    f"{result.requests_per_second:,.0f} req/s",
                    notes=f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; "
                    # The floor's answers are all 404s, which wrk counts as errors.
                    f"errors {0 if url == fixtures.floor_url else result.errors}; "
                    f"server CPU {cpu_ms:.2f} ms/req "
                    f"(2 cores: {2000 / cpu_ms:,.0f} req/s)",
                )
            )
    return rows, best_list


def measure_plays(fixtures: Fixtures) -> tuple[Row, int]:
    """64 clients play one clip over and over, each listen by a new listener; every
    listen must be counted."""
    before = plays_of(fixtures.listen_clip_id)
    started = time.monotonic()
    with ThreadPoolExecutor(LISTENERS) as pool:
        complete = sum(
            pool.map(
                listen,
                [fixtures.listen_url] * LISTENERS,
                [LISTENS_EACH] * LISTENERS,
                range(LISTENERS),
            )
        )
    elapsed = time.monotonic() - started
    counted = plays_of(fixtures.listen_clip_id) - before
    lost = complete - counted
    return (
        row(
            f"plays counted, {LISTENERS} clients x {LISTENS_EACH} new listeners "
            "on one clip",
            f"{counted / elapsed:,.0f} plays/s",
            notes=f"{complete} complete listens, {counted} counted: {lost} lost",
        ),
        lost,
    )


def measure_memory(fixtures: Fixtures, master: int) -> tuple[Row, float]:
    """Peak RSS of the workers while 64 clients each download the 100 MB clip."""
    idle = max(rss_mb(pid) for pid in worker_pids(master))
    before = plays_of(fixtures.big_clip_id)
    stop = threading.Event()
    started = time.monotonic()
    with ThreadPoolExecutor(1) as sampler:
        peak = sampler.submit(sample_peak, lambda: worker_pids(master), stop)
        failed = curl_together(
            [
                ["curl", "-s", "-o", "/dev/null", "-A", f"bench-{n}", fixtures.big_url]
                for n in range(LISTENERS)
            ]
        )
        stop.set()
        peak_mb = peak.result()
    elapsed = time.monotonic() - started
    streamed = plays_of(fixtures.big_clip_id) - before
    growth = peak_mb - idle
    return (
        row(
            f"worker RSS, {LISTENERS} clients x 100 MB",
            f"{peak_mb:.0f} MB peak",
            notes=f"idle {idle:.0f} MB, {growth:+.1f} MB while sending "
            f"{LISTENERS * BIG_CLIP_BYTES // MB:,} MB in {elapsed:.1f} s "
            f"({streamed} plays, {failed} failed)",
        ),
        growth,
    )


def run(seconds: int, before_root: Path) -> dict[str, list[Row]]:
    """All measurements, against one gunicorn and one nginx, and the stream's also
    against the code before the play rule (before_root); then the goals."""
    fixtures = seed()
    before_clip_id = seed_before(before_root)
    with (
        running(gunicorn(), OUT / "gunicorn.log", APP_ENV) as master,
        running(nginx(), OUT / "nginx.log"),
    ):
        wait_until_up(fixtures.list_url)
        wait_until_up(fixtures.static_url)
        print("bench: warming up", flush=True)
        wrk(fixtures.list_url, 16, 2)
        wrk(fixtures.stream_url, 4, 2)
        print("bench: streaming a 5 MB clip: Clips vs nginx", flush=True)
        rows = measure_streaming(fixtures, seconds)
        after = Server(
            name="after",
            master=master,
            database_url=DATABASE_URL,
            stream_url=fixtures.stream_url,
            stream_clip_id=fixtures.stream_clip_id,
        )
        with serving_before(before_root, before_clip_id) as before:
            rule = measure_rule(before, after, seconds)
        api_rows, best_list = measure_api(fixtures, seconds, master)
        print(f"bench: {LISTENERS} listeners on one clip", flush=True)
        plays_row, lost = measure_plays(fixtures)
        print(f"bench: worker memory while {LISTENERS} stream 100 MB", flush=True)
        memory_row, growth = measure_memory(fixtures, master)
    rows += [*api_rows, plays_row, memory_row]
    ratios = [float(r[3].rstrip("%")) for r in rows[:2]]
    goals = [
        [
            "stream throughput >= 60% of nginx (loopback, 1 and 16 conn.)",
            " / ".join(f"{ratio:.0f}%" for ratio in ratios),
            _verdict(min(ratios) >= 60),
        ],
        [
            "GET list >= 1,500 req/s (best of 1, 16, 64 conn.)",
            f"{best_list:,.0f} req/s",
            _verdict(best_list >= 1500),
        ],
        ["zero lost plays", f"{lost} lost", _verdict(lost == 0)],
        [
            f"flat worker memory (< {FLAT_RSS_MB} MB growth)",
            f"{growth:+.1f} MB",
            _verdict(growth < FLAT_RSS_MB),
        ],
    ]
    rule_rows, rule_cost, rule_goals = rule_tables(rule)
    return {
        "rows": rows,
        "rule": rule_rows,
        "rule cost": rule_cost,
        "goals": goals + rule_goals,
    }


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def environment(before: str | None = None) -> dict[str, str]:
    """The machine and the code measured (and the code compared with, if any)."""
    nginx_version = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=True
    ).stderr.strip()
    load = os.getloadavg()
    # The script rewrites results.md itself.
    changed = git("status", "--porcelain", "--untracked-files=no", ":!bench/results.md")
    compared = (
        {"code before the play rule": git("log", "-1", "--format=%h (%s)", before)}
        if before
        else {}
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "code (after)": git("rev-parse", "--short", "HEAD")
        + (" with uncommitted changes" if changed else ""),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "load average (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in load),
        "Clips": "gunicorn (clips_project/gunicorn.py: cores+1 gthread workers, "
        "2 threads), PostgreSQL on 127.0.0.1, DEBUG=0",
        "nginx": nginx_version.replace("nginx version: ", "")
        + ", sendfile on, worker_processes auto",
        "load generator": "wrk 4.1 (2 threads), curl, Python clients, on the same "
        "2 cores",
        **compared,
    }


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    return model[1] if model else platform.machine()


def table(header: list[str], rows: list[Row]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument(
        "--before", default=BEFORE, help="the commit to compare the stream with"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args()

    ensure_tools()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    setup_django()
    recreate_database(DATABASE_URL)
    about = environment(args.before)
    with checkout(args.before) as before_root:
        tables = run(args.seconds, before_root)
    about["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report = "\n".join(
        [
            *(f"- {key}: {value}" for key, value in about.items()),
            "",
            table(
                [
                    "measure",
                    "Clips (gunicorn)",
                    "nginx static",
                    "Clips / nginx",
                    "notes",
                ],
                tables["rows"],
            ),
            "",
            f"The play rule: the stream endpoint, {RULE_CONNECTIONS} connections, "
            f"4 KiB ranges ({LISTEN_RANGE}; the seek {SEEK_RANGE}), on the code "
            f"before the rule ({args.before}) and after it, 2 runs each in the "
            "order before, after, after, before (req/s over both; in brackets, "
            "each run's):",
            "",
            table(
                [
                    "stream request",
                    "before",
                    "after",
                    "after / before",
                    "server CPU per request, before -> after",
                    "plays counted of requests sent, before; after",
                    "notes",
                    f"after >= {RULE_MIN_RATIO:.0%} of before",
                ],
                tables["rule"],
            ),
            "",
            table(
                [
                    "server CPU per request, more than a seek's",
                    "before (every listen counted)",
                    "after (the play rule)",
                ],
                tables["rule cost"],
            ),
            "",
            table(["goal", "measured", "verdict"], tables["goals"]),
        ]
    )
    print(report)
    write_report(args.out, report)
    print(f"bench: wrote {args.out}")


def wrk_arguments(doc: str, out: Path) -> argparse.Namespace:
    """A wrk benchmark's command line: --seconds per run, --out for its results."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--out", type=Path, default=out)
    return parser.parse_args()


def report_publish(path: Path, described: dict[str, str], *tables: str) -> None:
    """Print the run's description (with the load at its end) and tables, and put
    them in the results file at `path`."""
    described = described | {
        "load average at end": ", ".join(f"{load:.2f}" for load in os.getloadavg())
    }
    report = "\n\n".join(
        ["\n".join(f"- {key}: {value}" for key, value in described.items()), *tables]
    )
    print(report)
    write_report(path, report)
    print(f"bench: wrote {path}")


def write_report(path: Path, report: str) -> None:
    """Replace the generated block of results.md, keeping the notes around it."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{block}\n"
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        text = f"{text.rstrip()}\n\n{block}\n"
    else:
        text = text[:start] + block + text[end + len(END) :]
    path.write_text(text)


if __name__ == "__main__":
    main()
