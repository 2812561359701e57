"""Listeners' progress beacons through make serve's edge, beside the stream decision.

    .venv/bin/python bench/listens.py [--rate 1000] [--seconds 30] [--quick]
        [--out bench/listens-results.md]

Creates and migrates its own database (clips_listens_bench), loads the samples and
starts, on loopback, what make serve runs in front of PostgreSQL: gunicorn as
shipped (clips_project/gunicorn.py) behind the nginx of deploy/nginx, and a Redis
of its own; the listen throttle stays as shipped (CLIPS_THROTTLE_LISTEN).

1. Listeners start: each request a new listener streams a sample's first 4 KB
   (bench/beacons.lua, start), so each is a stream decision that counts a play.
2. They report: the same listeners POST their progress as the listener's page
   does (text/plain, navigator.sendBeacon), paced at --rate a second for
   --seconds; each listener sends one every LISTENERS / rate seconds (10 s at the
   defaults, as the page does while playing).
3. A clip with 100,000 listens' progress: its stats, through the edge (first,
   on the idle server) and in this process (last).

Prints the rate held, errors, latency and server CPU per request of both kinds,
the database transactions per beacon, and writes bench/listens-results.md.
Needs wrk, nginx, curl and redis-server. Everything it starts, it stops.
"""

import dataclasses
import re
import signal
import statistics
import subprocess
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

from harness import (
    BENCH,
    Meter,
    Row,
    Wrk,
    command_line,
    cpu_ms,
    database_url,
    edge_site,
    environment,
    fresh_site,
    publish,
    redis_server,
    table,
    transactions,
    verdict,
    wrk_command,
    wrk_figures,
)

if TYPE_CHECKING:  # Django is set up in main(), before clips is imported
    from clips.listening import Window

OUT = BENCH / "out-listens"
DATABASE = database_url("clips_listens_bench")
# The sample streamed and reported on (its preview, made by the ingest), and the
# one given STATS_LISTENS listens' progress.
CLIP = 1
STATS_CLIP = 2
STATS_LISTENS = 100_000
STATS_REQUESTS = 100
STATS_WARM_UP = 6
START_CONNECTIONS = 16
BEACON_CONNECTIONS = 128
GOAL_RATE = 1_000
GOAL_STATS_MS = 50
# Before reading PostgreSQL's transaction counts: a backend flushes its
# statistics at least this often once idle (PostgreSQL 15: 10 s).
STATS_FLUSH_SECONDS = 11


@dataclasses.dataclass(frozen=True)
class Phase:
    """A wrk run through the edge, with what it cost the servers."""

    run: Wrk
    statuses: dict[int, int]
    gunicorn_cpu_ms: float
    database_cpu_ms: float
    nginx_cpu_ms: float
    transactions: int = 0


@dataclasses.dataclass(frozen=True)
class Load:
    listeners: int  # per wrk thread (2)
    rate: int
    seconds: int


def added(parser) -> None:
    parser.add_argument("--rate", type=int, default=GOAL_RATE, help="beacons a second")
    parser.add_argument(
        "--seconds", type=int, help="length of the beacons' run (30; --quick: 3)"
    )


def seed() -> "Window":
    """The samples, CLIP's preview, STATS_CLIP's listens; the window CLIP streams."""
    from django.core.management import call_command
    from django.db import connection

    from clips.ingest.pipeline import clip_ingest
    from clips.listening import window_of
    from clips.models import Clip, ListenProgress

    call_command("migrate", verbosity=0)
    call_command("loaddata", "sample_clips", verbosity=0)
    clip_ingest(clip_id=CLIP)
    # Each listener stopped somewhere: listener n heard the first n % 241 slots.
    slots = "LEAST(GREATEST(n %% 241 - {column} * 60, 0), 60)"
    heard = ", ".join(
        f"(1::bigint << {slots.format(column=column)}) - 1" for column in range(4)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ListenProgress._meta.db_table} (
                clip_id, listener, started_at, window_start, window_seconds,
                ends_reported, heard_0, heard_1, heard_2, heard_3)
            SELECT %s, 'bench-' || n, now(), 0, %s, 1, {heard}
            FROM generate_series(1, %s) AS n
            """,
            [STATS_CLIP, Clip.objects.get(pk=STATS_CLIP).duration, STATS_LISTENS],
        )
        # As autovacuum would have by then (the stats read the index alone), and
        # with the seed's pages written out, not being written meanwhile.
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    return window_of(Clip.objects.all(), CLIP, kept=None)


def run_wrk(command: list[str], meter: Meter, until_started: bool = False) -> Phase:
    """wrk through the edge between two readings of the meter; with
    `until_started`, stopped (SIGINT) once each thread has started its listeners."""
    before = meter.read()
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines = []
    if until_started:
        for line in wrk.stdout:
            lines.append(line)
            if sum(seen == "listeners started\n" for seen in lines) == 2:
                wrk.send_signal(signal.SIGINT)
                break
    lines += wrk.stdout.readlines()
    if wrk.wait() != 0:
        raise SystemExit(f"bench: wrk failed: {''.join(lines)}")
    after = meter.read()
    output = "".join(lines)
    run = wrk_figures(output)
    statuses = {
        int(status): int(count)
        for status, count in re.findall(r"^status (\d+): (\d+)$", output, re.M)
    }
    database = cpu_ms(before, after, run.requests, "app backend")
    return Phase(
        run,
        statuses,
        cpu_ms(before, after, run.requests, "app") - database,
        database,
        cpu_ms(before, after, run.requests, "nginx"),
    )


def stats_times(url: str) -> list[float]:
    """STATS_REQUESTS requests of the clip's stats, one at a time, as curl times
    them (ms), after a few to warm the workers up."""
    times = []
    for _ in range(STATS_WARM_UP + STATS_REQUESTS):
        output = subprocess.run(
            ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{time_total}", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(output) * 1000)
    return times[STATS_WARM_UP:]


def stats_in_process() -> list[float]:
    """The same stats, clips.listening.clip_listening alone, in this process (ms)."""
    from clips.listening import clip_listening
    from clips.models import Clip

    clip = Clip.objects.get(pk=STATS_CLIP)
    times = []
    for _ in range(STATS_REQUESTS):
        started = time.perf_counter()
        listening = clip_listening(clip=clip)
        times.append((time.perf_counter() - started) * 1000)
    if listening.listens != STATS_LISTENS:
        raise SystemExit(f"bench: the stats counted {listening.listens} listens")
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


def measure(env: dict, window, load: Load) -> dict:
    """Both wrk phases and the stats through one edge."""
    agent = f"bench-listens-{time.time_ns()}"
    with ExitStack() as servers:
        app, front = edge_site(servers, env, OUT)
        print(f"bench: the stats of {STATS_LISTENS:,} listens", flush=True)
        edge = stats_times(f"{front.base}/api/v1/clips/{STATS_CLIP}/stats")
        meter = Meter((app.pid,), (front.pid,), DATABASE)
        clip = f"{front.base}/api/v1/clips/{CLIP}"
        listeners = 2 * load.listeners
        print(f"bench: {listeners:,} listeners start a listen", flush=True)
        started = run_wrk(
            wrk_command(
                f"{clip}/stream",
                START_CONNECTIONS,
                600,
                BENCH / "beacons.lua",
                agent,
                "start",
                str(load.listeners),
            ),
            meter,
            until_started=True,
        )
        time.sleep(STATS_FLUSH_SECONDS)
        before = transactions(DATABASE)
        print(
            f"bench: beacons at {load.rate:,}/s for {load.seconds} s, "
            f"{BEACON_CONNECTIONS} connections",
            flush=True,
        )
        beacons = run_wrk(
            wrk_command(
                f"{clip}/listens",
                BEACON_CONNECTIONS,
                load.seconds,
                BENCH / "beacons.lua",
                agent,
                "beacon",
                str(load.listeners),
                str(load.rate),
                f"{window.start:g}",
                f"{window.seconds:g}",
            ),
            meter,
        )
        time.sleep(STATS_FLUSH_SECONDS)
        beacons = dataclasses.replace(
            beacons, transactions=transactions(DATABASE) - before
        )
    return {"started": started, "beacons": beacons, "edge": edge}


def phase_row(name: str, phase: Phase, rate: str) -> Row:
    run = phase.run
    answered = sum(phase.statuses.values())
    statuses = ", ".join(
        f"{count:,} answered {status}"
        for status, count in sorted(phase.statuses.items())
    )
    return [
        name,
        rate,
        f"{run.requests_per_second:,.0f}/s",
        f"{run.errors:,} ({statuses or f'{answered} answered'})",
        f"{run.p50_ms:.1f} / {run.p99_ms:.1f} ms",
        f"{phase.gunicorn_cpu_ms:.2f} + {phase.database_cpu_ms:.2f} + "
        f"{phase.nginx_cpu_ms:.2f} ms",
    ]


def main() -> None:
    args = command_line(__doc__, BENCH / "listens-results.md", OUT, added, False)
    load = Load(
        listeners=500 if args.quick else 5_000,
        rate=args.rate,
        seconds=args.seconds or (3 if args.quick else 30),
    )
    env = fresh_site(OUT, DATABASE, "wrk", "nginx", "curl", "redis-server")
    window = seed()
    about = environment(
        args.out,
        clips="clips_project/gunicorn.py as shipped (cores+1 gthread workers, "
        "2 threads) behind deploy/nginx (CLIPS_STREAM_OFFLOAD=1, NUM_PROXIES=1), "
        "PostgreSQL on 127.0.0.1, a Redis of its own, DEBUG=0; stream rate limit "
        "and the plays-per-address cap off (every listener is 127.0.0.1), the "
        "listen throttle as shipped",
        load_generator=f"wrk 4.1 with bench/beacons.lua (2 threads), curl; on the "
        f"same cores. Sample {CLIP}'s stream window: {window.start:g} s + "
        f"{window.seconds:g} s",
    )
    with redis_server(OUT / "redis.log") as redis_url:
        measured = measure(env | {"REDIS_URL": redis_url}, window, load)
    started, beacons = measured["started"], measured["beacons"]
    in_process = stats_in_process()
    edge_ms, stats_ms = measured["edge"], in_process
    listeners = 2 * load.listeners
    rows = [
        phase_row(
            f"stream decision: a new listener's first 4 KB of sample {CLIP} "
            f"({START_CONNECTIONS} conn., {listeners:,} listeners)",
            started,
            "as fast as it goes",
        ),
        phase_row(
            f"beacon: POST .../listens, text/plain ({BEACON_CONNECTIONS} conn., "
            f"{load.seconds} s, each of {listeners - 2:,} listeners every "
            f"{(listeners - 2) / load.rate:.0f} s)",
            beacons,
            f"{load.rate:,}/s",
        ),
    ]
    per_beacon = beacons.transactions / max(beacons.run.requests, 1)
    goals = [
        [
            f"{GOAL_RATE:,} beacons a second held, 0 errors",
            f"{beacons.run.requests_per_second:,.0f}/s, {beacons.run.errors:,} errors",
            verdict(
                beacons.run.requests_per_second >= 0.98 * GOAL_RATE
                and not beacons.run.errors
            ),
        ],
        [
            "database work per beacon: one statement (the upsert), no lock held "
            "across requests",
            f"{per_beacon:.2f} transactions a beacon (PostgreSQL's xact_commit: "
            f"{beacons.transactions:,} for {beacons.run.requests:,}): the upsert, "
            "the connection's health check (CONN_HEALTH_CHECKS' SELECT 1), and what "
            "autovacuum and the sweeps of closed listens commit meanwhile; the "
            "tests count the beacon's statements (test_listens.py)",
            "",
        ],
        [
            f"stats of a clip with {STATS_LISTENS:,} listens < {GOAL_STATS_MS} ms",
            f"through the edge: median {statistics.median(edge_ms):.1f} ms, p95 "
            f"{p95(edge_ms):.1f} ms; clip_listening in-process: median "
            f"{statistics.median(stats_ms):.1f} ms, p95 {p95(stats_ms):.1f} ms",
            verdict(p95(edge_ms) < GOAL_STATS_MS),
        ],
    ]
    columns = ["request", "asked", "held", "errors", "p50 / p99", "server CPU"]
    publish(
        args.out,
        table(columns, rows)
        + "\n\nServer CPU per request: gunicorn, the PostgreSQL server, nginx.",
        table(["goal", "measured", "verdict"], goals),
        about=about,
    )


if __name__ == "__main__":
    main()
