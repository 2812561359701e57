"""Clips' API request rate with one app replica and with two, side by side.

    .venv/bin/python bench/replicas.py [--seconds 8] [--out bench/replicas-results.md]

Creates and migrates its own database (clips_replicas_bench: the six samples and
bench/edge.py's catalogue of a thousand clips) and starts, on loopback, two
gunicorns as shipped (clips_project/gunicorn.py, CLIPS_STREAM_OFFLOAD=1,
NUM_PROXIES=1) on that one database, and two nginx with the config of deploy/nginx
(rendered by its render.py): one with the first gunicorn upstream, one with both.
wrk asks each nginx in turn for the anonymous list and one clip, with nginx's
catalogue cache and the app's own (CLIPS_LIST_CACHE_SECONDS) off, so that every
request reaches Django. Prints a table and writes bench/replicas-results.md.
Needs wrk and nginx. Everything it starts, it stops.
"""

import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

# bench/edge.py's seeding and run shape, bench/run.py's servers, wrk and report.
from edge import (
    BACKENDS,
    HOST,
    ROOT,
    ROUNDS,
    WRK_CONNECTIONS,
    cpu_ms,
    free_ports,
    rendered_nginx,
    seed_catalogue,
    setup_django,
    started,
)
from run import (
    APP_ENV,
    Row,
    Wrk,
    analyze,
    cpu_seconds,
    ensure_tools,
    environment,
    recreate_database,
    report_publish,
    running,
    table,
    worker_pids,
    wrk,
    wrk_arguments,
)
from run import (
    DATABASE_URL as RUN_DATABASE_URL,
)

OUT = ROOT / "bench" / "out-replicas"
DATABASE_URL = f"{RUN_DATABASE_URL.rsplit('/', 1)[0]}/clips_replicas_bench"
# Production's settings behind nginx; rate limits off (every client is
# 127.0.0.1) and the app's catalogue cache off, so each request is Django's work.
BASE_ENV = {
    **APP_ENV,
    "DATABASE_URL": DATABASE_URL,
    "MEDIA_ROOT": str(OUT / "media"),
    "CLIPS_STREAM_OFFLOAD": "1",
    "NUM_PROXIES": "1",
    "CLIPS_LIST_CACHE_SECONDS": "0",
}
# What wrk asks for: (path, row).
MEASURES = [
    ("/api/v1/clips", "GET /api/v1/clips (anonymous, 20 a page)"),
    ("/api/v1/clips/1", "GET /api/v1/clips/1 (anonymous)"),
]
# The rendered config caches the anonymous catalogue for 2 s; not here.
CATALOGUE_CACHE = "proxy_cache clips_catalogue;"
COLUMNS = ["measure", "1 replica", "2 replicas", "2 / 1", "notes"]


def gunicorn(port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one replica, gunicorn as shipped."""
    config = ["-c", "clips_project/gunicorn.py"]
    command = [sys.executable, "-m", "gunicorn", *config, "clips_project.wsgi"]
    return command, {**BASE_ENV, "GUNICORN_BIND": f"{HOST}:{port}"}


def front(port: int, upstreams: list[int]) -> list[str]:
    """The shipped nginx config before `upstreams`, its catalogue cache off."""
    directory = OUT / f"nginx-{len(upstreams)}"
    command = rendered_nginx(directory, port, upstreams, out=OUT)
    config = directory / "clips.conf"
    text = config.read_text()
    if CATALOGUE_CACHE not in text:
        sys.exit(f"bench: {CATALOGUE_CACHE} is gone from deploy/nginx; update me")
    config.write_text(text.replace(CATALOGUE_CACHE, "proxy_cache off;"))
    return command


def served(logs: list[Path]) -> list[int]:
    """Requests in each replica's gunicorn access log so far."""
    return [log.read_text(errors="replace").count('"GET /api/') for log in logs]


def app_cpu(masters: list[int]) -> dict[str, float]:
    """CPU seconds used so far by the replicas (gunicorn masters, live and finished
    workers) and by each PostgreSQL backend serving them."""
    from django.db import connection

    used = {
        f"gunicorn {master}": cpu_seconds(master, children=True)
        + sum(map(cpu_seconds, worker_pids(master)))
        for master in masters
    }
    with connection.cursor() as cursor:
        cursor.execute(BACKENDS)
        used |= {f"backend {pid}": cpu_seconds(pid) for (pid,) in cursor.fetchall()}
    return used


@dataclass(frozen=True)
class Measured:
    run: Wrk
    cpu_ms: float  # of the replicas and their PostgreSQL backends, per request
    shares: list[float]  # of the requests, by replica


def measure(seconds: int) -> dict[str, dict[int, Measured]]:
    """Each measure on one replica and on two in turn, ROUNDS times; the best run
    of each, with what it cost and the share of it each replica answered."""
    first, second, one, two = free_ports(4)
    logs = [OUT / f"gunicorn-{n}.log" for n in (1, 2)]
    fronts = {1: f"http://{HOST}:{one}", 2: f"http://{HOST}:{two}"}
    with ExitStack() as servers:
        masters = []
        for port, log in zip((first, second), logs, strict=True):
            command, env = gunicorn(port)
            masters.append(servers.enter_context(running(command, log, env)))
        servers.enter_context(running(front(one, [first]), OUT / "nginx-1.log"))
        servers.enter_context(running(front(two, [first, second]), OUT / "nginx-2.log"))
        for base in fronts.values():
            started(f"{base}/api/v1/clips")
            wrk(f"{base}/api/v1/clips", WRK_CONNECTIONS, 2)  # warm every worker
        best: dict[str, dict[int, Measured]] = {}
        for path, label in MEASURES:
            print(f"bench: {label}", flush=True)
            best[label] = {}
            for _ in range(ROUNDS):
                for replicas, base in fronts.items():
                    logged, used = served(logs), app_cpu(masters)
                    run = wrk(base + path, WRK_CONNECTIONS, seconds)
                    cpu = cpu_ms(used, app_cpu(masters), "") * 1000 / run.requests
                    now = served(logs)
                    answered = [b - a for a, b in zip(logged, now, strict=True)]
                    shares = [n / max(sum(answered), 1) for n in answered]
                    kept = best[label].get(replicas)
                    rate = run.requests_per_second
                    if kept is None or rate > kept.run.requests_per_second:
                        best[label][replicas] = Measured(run, cpu, shares)
    return best


def rows(best: dict[str, dict[int, Measured]]) -> list[Row]:
    lines = []
    for label, by_replicas in best.items():
        one, two = by_replicas[1], by_replicas[2]
        ratio = two.run.requests_per_second / one.run.requests_per_second
        notes = (
            f"CPU per request {one.cpu_ms:.1f} -> {two.cpu_ms:.1f} ms; "
            f"p50 {one.run.p50_ms:.0f} -> {two.run.p50_ms:.0f} ms, "
            f"p99 {one.run.p99_ms:.0f} -> {two.run.p99_ms:.0f} ms; "
            f"errors {one.run.errors}, {two.run.errors}; with 2, each replica "
            "answered " + " / ".join(f"{share:.0%}" for share in two.shares)
        )
        lines.append(
            [
                f"{label}, {WRK_CONNECTIONS} conn.",
                f"{one.run.requests_per_second:,.0f} req/s",
                f"{two.run.requests_per_second:,.0f} req/s",
                f"{ratio:.2f}",
                notes,
            ]
        )
    return lines


def main() -> None:
    args = wrk_arguments(__doc__, ROOT / "bench" / "replicas-results.md")
    ensure_tools()
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "media").mkdir(parents=True)
    setup_django(BASE_ENV)
    recreate_database(DATABASE_URL)
    seed_catalogue()
    analyze()
    described = environment() | {
        "Clips": "each replica clips_project/gunicorn.py as shipped (cores+1 "
        "gthread workers, 2 threads), CLIPS_STREAM_OFFLOAD=1, NUM_PROXIES=1, "
        "one PostgreSQL on 127.0.0.1, DEBUG=0, rate limits and catalogue caches "
        "off; behind deploy/nginx (render.py, one --upstream per replica)",
        "load generator": f"wrk 4.1 (2 threads; better of {ROUNDS} alternating "
        "runs), on the same cores",
    }
    best = measure(args.seconds)
    report_publish(args.out, described, table(COLUMNS, rows(best)))


if __name__ == "__main__":
    main()
