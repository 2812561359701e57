"""Clips under gunicorn and PostgreSQL, beside nginx and a reference revision.

    .venv/bin/python bench/service.py [--seconds 8] [--before REF] [--quick]
                                      [--out bench/results.md]

Creates and migrates its own database (clips_bench), starts gunicorn with the
production config (clips_project/gunicorn.py) and a plain nginx serving the same
media, both on loopback, runs wrk and a few Python clients against them, prints a
table and writes bench/results.md. The stream's request rate and CPU per request,
for a listen that counts a play, one that does not and a seek, are also measured
on the reference revision (--before, by default where this branch left main),
checked out into a temporary git worktree with its own database clips_bench_before
and run under the same gunicorn config, side by side. Needs wrk, nginx, curl and
git. Everything it starts, it stops.
"""

import functools
import http.client
import operator
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import (
    BENCH,
    MB,
    Meter,
    Metered,
    Row,
    app_env,
    checkout,
    command_line,
    curl_together,
    database_url,
    default_reference,
    ensure_tools,
    environment,
    fresh_directory,
    gunicorn,
    metered_wrk,
    peak_rss_mb,
    publish,
    recreate_database,
    rss_mb,
    seed_catalogue,
    serve,
    setup_django,
    split_url,
    static_nginx,
    table,
    ttfb_ms,
    verdict,
    worker_pids,
    write_wav,
    wrk,
)

OUT = BENCH / "out"
MEDIA = OUT / "media"
DATABASE = database_url("clips_bench")
REFERENCE_DATABASE = DATABASE + "_before"
ENV = app_env(DATABASE, MEDIA)
REFERENCE_ENV = {**ENV, "DATABASE_URL": REFERENCE_DATABASE}
# The WAV clips, by what they are for: (name in MEDIA, size).
WAV_CLIPS = {
    "stream": ("bench/clip-5mb.wav", 5 * MB),
    "big": ("bench/clip-100mb.wav", 100 * MB),
}
CONCURRENCY = (1, 16, 64)
# The play rule's rows: many small requests, so the transfer does not hide their
# fixed cost. 4 KiB from byte 0 is a listen under both rules; the seek is the same
# size 1 MiB in.
RULE_CONNECTIONS = 16
LISTEN_RANGE = "bytes=0-4095"
SEEK_RANGE = "bytes=1048576-1052671"
RULE_CASES: list[tuple[str, str, Literal["new", "same"]]] = [
    ("counted: a new listener each time", LISTEN_RANGE, "new"),
    ("not counted: the same listener again", LISTEN_RANGE, "same"),
    ("a seek: never counted", SEEK_RANGE, "new"),
]
# The stream may cost more than the reference's, but not half its request rate.
RULE_MIN_RATIO = 0.5
STREAM_MIN_PERCENT = 60  # of nginx's rate
LIST_MIN_RATE = 1_500  # req/s
# Worker memory is flat if sending the big clip to every client grows it by less.
FLAT_RSS_MB = 10


@dataclass(frozen=True)
class Load:
    """How many clients the measures that are not wrk runs use."""

    listeners: int = 64
    listens_each: int = 20
    ttfb_samples: int = 30


QUICK = Load(listeners=8, listens_each=3, ttfb_samples=5)


@dataclass(frozen=True)
class Site:
    """One revision of Clips under gunicorn: where to ask it, what it counts in."""

    base: str
    meter: Meter
    stream_clip: int

    def stream(self, clip: int | None = None) -> str:
        return f"{self.base}/api/v1/clips/{clip or self.stream_clip}/stream"


@dataclass(frozen=True)
class Streams:
    """wrk runs on one site's stream endpoint, with the plays it counted."""

    runs: tuple[Metered, ...]
    plays: int

    def __add__(self, other: "Streams") -> "Streams":
        return Streams(self.runs + other.runs, self.plays + other.plays)

    @property
    def requests(self) -> int:
        return sum(ran.run.requests for ran in self.runs)

    @property
    def requests_per_second(self) -> float:
        seconds = sum(r.run.requests / r.run.requests_per_second for r in self.runs)
        return self.requests / seconds

    @property
    def cpu_ms(self) -> float:
        return sum(r.app_cpu_ms * r.run.requests for r in self.runs) / self.requests

    @property
    def sent(self) -> int:
        return sum(ran.run.sent for ran in self.runs)

    @property
    def errors(self) -> int:
        return sum(ran.run.errors for ran in self.runs)


# --- setting up ---------------------------------------------------------------


def catalogue_clip(n: int, sample) -> dict:
    """This benchmark's catalogue clip: the genres in turn, a longer text, and
    every other clip played (0 to 96 times)."""
    from clips.models import Genre

    genres = list(Genre.values)
    fields = ("duration", "audio_file", "content_type", "size_bytes")
    return {
        "title": f"Catalogue clip {n}",
        "description": "A clip in a catalogue of a thousand, for the benchmark. " * 3,
        "genre": genres[n % len(genres)],
        "play_count": (n // 2) % 97 if n % 2 == 0 else 0,
        **{field: getattr(sample, field) for field in fields},
    }


def wav_clip_fields(name: str, size: int) -> dict:
    """A WAV clip's row, in fields that the reference revision has too."""
    return {
        "title": f"Benchmark {size // MB} MB",
        "genre": "other",
        "duration": min(3600, size / 44_100),
        "audio_file": name,
        "content_type": "audio/wav",
        "size_bytes": size,
    }


def seed() -> dict[str, int]:
    """The catalogue (half of it played), the samples and the WAV clips, ready,
    each with its digest (the ETag) worked out as an upload's is; ANALYZE. The
    ids of the clips asked for: "listen" (a sample) and WAV_CLIPS' keys."""
    from django.db import connection

    from clips.models import Clip, ClipStatus
    from clips.services import clip_audio_digest

    samples, _ = seed_catalogue(catalogue_clip)
    ids = {"listen": samples[0].pk}
    for key, (name, size) in WAV_CLIPS.items():
        write_wav(MEDIA / name, size)
        fields = wav_clip_fields(name, size)
        clip = Clip.objects.create(status=ClipStatus.READY, **fields)
        clip_audio_digest(clip=clip)
        ids[key] = clip.pk
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


# Run by the reference revision (manage.py shell -c): only what its stream needs,
# ready to stream if that revision has an ingest status.
SEED_REFERENCE = """
from django.core.management import call_command
from django.db import connection
from clips.models import Clip
call_command("migrate", verbosity=0)
fields = {fields!r}
if any(field.name == "status" for field in Clip._meta.fields):
    fields["status"] = "ready"
clip = Clip.objects.create(**fields)
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
print(clip.pk)
"""


def seed_reference(root: Path) -> int:
    """Its own database, migrated by its code, with the 5 MB clip; the clip's id."""
    recreate_database(REFERENCE_DATABASE)
    code = SEED_REFERENCE.format(fields=wav_clip_fields(*WAV_CLIPS["stream"]))
    output = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=root,
        env={**os.environ, **REFERENCE_ENV},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(output.split()[-1])


# --- measuring ----------------------------------------------------------------


@functools.cache
def _connected(database: str):
    """One connection per database for the whole run: no backend comes and goes
    while the meter sums theirs."""
    import psycopg

    return psycopg.connect(database, autocommit=True)


def plays_of(clip_id: int, database: str = DATABASE) -> int:
    """The clip's play_count, wherever the revision keeps it."""
    total = _connected(database).execute(_plays_query(database), [clip_id])
    return (total.fetchone() or [0])[0]


@functools.cache
def _plays_query(database: str) -> str:
    """On the clip's row since migration 0015; before, in a table of totals."""
    on_the_row = _connected(database).execute(
        "SELECT FROM information_schema.columns "
        "WHERE table_name = 'clips_clip' AND column_name = 'play_count'"
    )
    if on_the_row.fetchone() is not None:
        return "SELECT play_count FROM clips_clip WHERE id = %s"
    return "SELECT play_count FROM clips_playtotal WHERE clip_id = %s"


def row(measure: str, ours: str, theirs: str = "", ratio: str = "", notes: str = ""):
    return [measure, ours, theirs, ratio, notes]


def measure_streaming(app: Site, nginx: str, seconds: int, load: Load) -> list[Row]:
    """The 5 MB clip from Clips and from nginx: whole (a listen), from byte 1 (a
    seek). Each request comes from a new listener, so that each listen counts."""
    rows = []
    cases = [("", "a listen: counted", 1), ("", "a listen: counted", 16)]
    cases.append(("bytes=1-", "a seek: not counted", 1))
    for range_header, what, connections in cases:
        ours = wrk(app.stream(), connections, seconds, range_header, "new")
        theirs = wrk(nginx, connections, seconds, range_header, "new")
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
    ours = ttfb_ms(app.stream(), load.ttfb_samples)
    theirs = ttfb_ms(nginx, load.ttfb_samples)
    rows.append(
        row(
            "time to first byte, 5 MB",
            f"{ours:.2f} ms",
            f"{theirs:.2f} ms",
            f"{theirs / ours:.0%}",
            f"median of {load.ttfb_samples}, a new connection each (curl)",
        )
    )
    return rows


def measure_rule(sites: dict[str, Site], seconds: int) -> dict[str, dict]:
    """Each case of RULE_CASES on the reference ("before") and on this checkout
    ("after"). Twice each, in the order before, after, after, before: a load that
    other work on the machine adds or takes away during a case weighs on both
    about alike."""
    results = {}
    for what, range_header, listeners in RULE_CASES:
        print(f"bench: stream, {what}: before and after", flush=True)
        runs = {name: [] for name in sites}
        for name in ("before", "after", "after", "before"):
            runs[name].append(streams(sites[name], seconds, range_header, listeners))
        results[what] = {
            name: functools.reduce(operator.add, ran) for name, ran in runs.items()
        }
    return results


def streams(
    site: Site, seconds: int, range_header: str, listeners: Literal["new", "same"]
) -> Streams:
    """Small ranges of the 5 MB clip on 16 connections: the site's CPU and plays."""
    database = site.meter.database
    plays = plays_of(site.stream_clip, database)
    ran = metered_wrk(
        site.meter,
        site.stream(),
        RULE_CONNECTIONS,
        seconds,
        range_header=range_header,
        listeners=listeners,
    )
    time.sleep(1)  # requests in flight when wrk stopped are counted by now
    return Streams((ran,), plays_of(site.stream_clip, database) - plays)


def rule_tables(results: dict[str, dict]) -> tuple[list[Row], list[Row], list[Row]]:
    """The before/after table, each case's CPU over a seek's, and the two goals."""
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
                verdict(ratio >= RULE_MIN_RATIO),
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
            f"after keeps >= {RULE_MIN_RATIO:.0%} of before's stream request rate "
            "(counted / not counted / seek)",
            " / ".join(f"{ratio:.0%}" for ratio in ratios),
            verdict(min(ratios) >= RULE_MIN_RATIO),
        ],
        [
            "after: each new listener's request counted, the same listener once "
            "(per wrk run), no seek",
            f"{counted['after'].plays:,} of {counted['after'].sent:,} sent / "
            f"{again['after'].plays} / {seek['after'].plays}",
            verdict(exact),
        ],
    ]
    return rows, cost, goals


def _rate(ran: Streams) -> str:
    """Requests per second over all runs, and each run's."""
    each = " / ".join(f"{r.run.requests_per_second:,.0f}" for r in ran.runs)
    return f"{ran.requests_per_second:,.0f} req/s ({each})"


def _plays(ran: Streams) -> str:
    return f"{ran.plays:,} of {ran.sent:,}"


def _p50s(ran: Streams) -> str:
    return ", ".join(f"{r.run.p50_ms:.1f}" for r in ran.runs)


def measure_api(app: Site, listen_clip: int, seconds: int) -> tuple[list[Row], float]:
    """List and detail at 1, 16 and 64 connections; also the list's best req/s.
    With the server's CPU per request, and the rate it would allow if gunicorn and
    PostgreSQL had both cores to themselves."""
    rows, best_list = [], 0.0
    api = f"{app.base}/api/v1"
    floor = f"{api}/nothing-here"
    endpoints = [
        ("list", f"{api}/clips", CONCURRENCY),
        ("detail", f"{api}/clips/{listen_clip}", CONCURRENCY),
        # No database, no DRF: middleware, URL resolving and a JSON 404.
        ("of an unknown path (the floor)", floor, (16,)),
    ]
    for name, url, concurrency in endpoints:
        print(f"bench: GET {name}", flush=True)
        for connections in concurrency:
            ran = metered_wrk(app.meter, url, connections, seconds)
            result, cpu_ms = ran.run, ran.app_cpu_ms
            if name == "list":
                best_list = max(best_list, result.requests_per_second)
            rows.append(
                row(
                    f"GET {name}, {connections} conn.",
                    f"{result.requests_per_second:,.0f} req/s",
                    notes=f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; "
                    # The floor's answers are all 404s, which wrk counts as errors.
                    f"errors {0 if url == floor else result.errors}; "
                    f"server CPU {cpu_ms:.2f} ms/req "
                    f"(2 cores: {2000 / max(cpu_ms, 0.001):,.0f} req/s)",
                )
            )
    return rows, best_list


def listen(url: str, times: int, client: int) -> int:
    """One client playing a clip `times` times on one keep-alive connection, each
    time as a new listener (its own User-Agent), so that each listen counts."""
    host, port, path = split_url(url)
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


def measure_plays(app: Site, clip: int, load: Load) -> tuple[Row, int]:
    """Many clients play one clip over and over, each listen by a new listener;
    every listen must be counted."""
    clients = load.listeners
    before = plays_of(clip)
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        complete = sum(
            pool.map(
                listen,
                [app.stream(clip)] * clients,
                [load.listens_each] * clients,
                range(clients),
            )
        )
    elapsed = time.monotonic() - started
    counted = plays_of(clip) - before
    lost = complete - counted
    return (
        row(
            f"plays counted, {clients} clients x {load.listens_each} new listeners "
            "on one clip",
            f"{counted / elapsed:,.0f} plays/s",
            notes=f"{complete} complete listens, {counted} counted: {lost} lost",
        ),
        lost,
    )


def measure_memory(app: Site, clip: int, master: int, load: Load) -> tuple[Row, float]:
    """Peak RSS of the workers while every client downloads the 100 MB clip."""
    clients, size = load.listeners, WAV_CLIPS["big"][1]
    idle = max(rss_mb(pid) for pid in worker_pids(master))
    before = plays_of(clip)
    stop = threading.Event()
    started = time.monotonic()
    with ThreadPoolExecutor(1) as sampler:
        peak = sampler.submit(peak_rss_mb, lambda: worker_pids(master), stop)
        failed = curl_together(
            [
                ["curl", "-s", "-o", "/dev/null", "-A", f"bench-{n}", app.stream(clip)]
                for n in range(clients)
            ]
        )
        stop.set()
        peak_mb = peak.result()
    elapsed = time.monotonic() - started
    streamed = plays_of(clip) - before
    growth = peak_mb - idle
    return (
        row(
            f"worker RSS, {clients} clients x {size // MB} MB",
            f"{peak_mb:.0f} MB peak",
            notes=f"idle {idle:.0f} MB, {growth:+.1f} MB while sending "
            f"{clients * size // MB:,} MB in {elapsed:.1f} s "
            f"({streamed} plays, {failed} failed)",
        ),
        growth,
    )


# --- the run ------------------------------------------------------------------


def run(seconds: int, load: Load, reference_root: Path) -> dict[str, list[Row]]:
    """All measurements, against one gunicorn and one nginx, and the stream's also
    against the reference revision in `reference_root`; then the goals."""
    ids = seed()
    reference_clip = seed_reference(reference_root)
    stream_file = WAV_CLIPS["stream"][0]
    with ExitStack() as servers:
        gunicorn_ = servers.enter_context(gunicorn(ENV, OUT / "gunicorn.log"))
        nginx = servers.enter_context(
            serve(static_nginx(OUT, MEDIA), OUT / "nginx.log", up=f"/{stream_file}")
        )
        app = Site(gunicorn_.base, Meter((gunicorn_.pid,), (), DATABASE), ids["stream"])
        print("bench: warming up", flush=True)
        wrk(f"{app.base}/api/v1/clips", 16, 2)
        wrk(app.stream(), 4, 2)
        print("bench: streaming a 5 MB clip: Clips vs nginx", flush=True)
        rows = measure_streaming(app, f"{nginx.base}/{stream_file}", seconds, load)
        reference_log = OUT / "gunicorn-before.log"
        with gunicorn(REFERENCE_ENV, reference_log, cwd=reference_root) as other:
            meter = Meter((other.pid,), (), REFERENCE_DATABASE)
            before = Site(other.base, meter, reference_clip)
            wrk(before.stream(), 4, 2)
            rule = measure_rule({"before": before, "after": app}, seconds)
        api_rows, best_list = measure_api(app, ids["listen"], seconds)
        print(f"bench: {load.listeners} listeners on one clip", flush=True)
        plays_row, lost = measure_plays(app, ids["listen"], load)
        print(f"bench: worker memory while {load.listeners} stream 100 MB", flush=True)
        memory_row, growth = measure_memory(app, ids["big"], gunicorn_.pid, load)
    rows += [*api_rows, plays_row, memory_row]
    ratios = [float(r[3].rstrip("%")) for r in rows[:2]]
    goals = [
        [
            f"stream throughput >= {STREAM_MIN_PERCENT}% of nginx "
            "(loopback, 1 and 16 conn.)",
            " / ".join(f"{ratio:.0f}%" for ratio in ratios),
            verdict(min(ratios) >= STREAM_MIN_PERCENT),
        ],
        [
            f"GET list >= {LIST_MIN_RATE:,} req/s (best of 1, 16, 64 conn.)",
            f"{best_list:,.0f} req/s",
            verdict(best_list >= LIST_MIN_RATE),
        ],
        ["zero lost plays", f"{lost} lost", verdict(lost == 0)],
        [
            f"flat worker memory (< {FLAT_RSS_MB} MB growth)",
            f"{growth:+.1f} MB",
            verdict(growth < FLAT_RSS_MB),
        ],
    ]
    rule_rows, rule_cost, rule_goals = rule_tables(rule)
    return {
        "rows": rows,
        "rule": rule_rows,
        "rule cost": rule_cost,
        "goals": goals + rule_goals,
    }


def main() -> None:
    args = command_line(
        __doc__,
        BENCH / "results.md",
        OUT,
        more=lambda parser: parser.add_argument(
            "--before",
            metavar="REF",
            help="the revision to compare the stream with "
            "(default: git merge-base HEAD main)",
        ),
    )
    reference = args.before or default_reference()
    ensure_tools("wrk", "nginx", "curl")
    fresh_directory(OUT)
    setup_django(ENV)
    recreate_database(DATABASE)
    about = environment(
        args.out,
        clips="gunicorn (clips_project/gunicorn.py: cores+1 gthread workers, "
        "2 threads), PostgreSQL on 127.0.0.1, DEBUG=0",
        load_generator="wrk 4.1 (2 threads), curl, Python clients, on the same 2 cores",
        reference=reference,
    )
    with checkout(reference) as root:
        tables = run(args.seconds, QUICK if args.quick else Load(), root)
    publish(
        args.out,
        table(
            ["measure", "Clips (gunicorn)", "nginx static", "Clips / nginx", "notes"],
            tables["rows"],
        ),
        f"The play rule: the stream endpoint, {RULE_CONNECTIONS} connections, "
        f"4 KiB ranges ({LISTEN_RANGE}; the seek {SEEK_RANGE}), on the code "
        f"before (--before, {about['code before (--before)']}) and after (this "
        "checkout), 2 runs each in the order before, after, after, before (req/s "
        "over both; in brackets, each run's):",
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
        table(
            ["server CPU per request, more than a seek's", "before", "after"],
            tables["rule cost"],
        ),
        table(["goal", "measured", "verdict"], tables["goals"]),
        about=about,
    )


if __name__ == "__main__":
    main()
