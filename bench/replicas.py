"""Clips' API request rate with one app replica and with two, side by side.

    .venv/bin/python bench/replicas.py [--seconds 8] [--quick]
                                       [--out bench/replicas-results.md]

Creates and migrates its own database (clips_replicas_bench: the six samples and
the catalogue of a thousand clips that bench/edge.py uses too) and starts, on
loopback, two gunicorns as shipped (clips_project/gunicorn.py,
CLIPS_STREAM_OFFLOAD=1, NUM_PROXIES=1) on that one database, and two nginx with
the config of deploy/nginx (rendered by its render.py): one with the first
gunicorn upstream, one with both. wrk asks each nginx in turn for the anonymous
list and one clip, with nginx's catalogue cache and the app's own
(CLIPS_LIST_CACHE_SECONDS) off, so that every request reaches Django. Prints a
table and writes bench/replicas-results.md. Needs wrk and nginx. Everything it
starts, it stops.
"""

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness import (
    BENCH,
    WRK_CONNECTIONS,
    Meter,
    Metered,
    Row,
    analyze,
    app_env,
    best_of,
    command_line,
    database_url,
    edge_nginx,
    ensure_tools,
    environment,
    fresh_directory,
    gunicorn,
    metered_wrk,
    publish,
    recreate_database,
    seed_catalogue,
    serve,
    setup_django,
    table,
    wrk,
)

OUT = BENCH / "out-replicas"
DATABASE = database_url("clips_replicas_bench")
# Production's settings behind nginx, the app's catalogue cache off, so that each
# request is Django's work.
ENV = app_env(
    DATABASE,
    OUT / "media",
    CLIPS_STREAM_OFFLOAD="1",
    NUM_PROXIES="1",
    CLIPS_LIST_CACHE_SECONDS="0",
)
# What wrk asks for: (path, row).
MEASURES = [
    ("/api/v1/clips", "GET /api/v1/clips (anonymous, 20 a page)"),
    ("/api/v1/clips/1", "GET /api/v1/clips/1 (anonymous)"),
]
# The rendered config caches the anonymous catalogue for 2 s; not here.
CATALOGUE_CACHE = "proxy_cache clips_catalogue;"
COLUMNS = ["measure", "1 replica", "2 replicas", "2 / 1", "notes"]


def no_catalogue_cache(directory: Path) -> None:
    """Turn the rendered config's catalogue cache off."""
    config = directory / "clips.conf"
    text = config.read_text()
    if CATALOGUE_CACHE not in text:
        sys.exit(f"bench: {CATALOGUE_CACHE} is gone from deploy/nginx; update me")
    config.write_text(text.replace(CATALOGUE_CACHE, "proxy_cache off;"))


def served(logs: list[Path]) -> list[int]:
    """Requests in each replica's gunicorn access log so far."""
    return [log.read_text(errors="replace").count('"GET /api/') for log in logs]


@dataclass(frozen=True)
class Measured:
    ran: Metered  # its CPU: the replicas' and their PostgreSQL backends'
    shares: list[float]  # of the requests, by replica

    def rate(self) -> float:
        return self.ran.run.requests_per_second


def measure(seconds: int, rounds: int) -> dict[str, dict[int, Measured]]:
    """Each measure on one replica and on two in turn, `rounds` times; the best
    run of each, with what it cost and the share of it each replica answered."""
    logs = [OUT / f"gunicorn-{n}.log" for n in (1, 2)]
    with ExitStack() as servers:
        apps = [servers.enter_context(gunicorn(ENV, log)) for log in logs]
        meter = Meter(tuple(app.pid for app in apps), (), DATABASE)
        fronts = {}
        for replicas in (1, 2):
            upstreams = [app.port for app in apps[:replicas]]
            directory = OUT / f"nginx-{replicas}"
            front = edge_nginx(directory, upstreams, OUT, no_catalogue_cache)
            log = OUT / f"nginx-{replicas}.log"
            nginx = servers.enter_context(serve(front, log, up="/api/v1/clips"))
            fronts[replicas] = nginx.base
        for base in fronts.values():
            wrk(f"{base}/api/v1/clips", WRK_CONNECTIONS, 2)  # warm every worker

        def shared(url: str) -> Measured:
            logged = served(logs)
            ran = metered_wrk(meter, url, WRK_CONNECTIONS, seconds)
            now = served(logs)
            counts = [b - a for a, b in zip(logged, now, strict=True)]
            return Measured(ran, [n / max(sum(counts), 1) for n in counts])

        best = {}
        for path, label in MEASURES:
            print(f"bench: {label}", flush=True)
            runs = {n: partial(shared, base + path) for n, base in fronts.items()}
            best[label] = best_of(runs, Measured.rate, rounds)
    return best


def rows(best: dict[str, dict[int, Measured]]) -> list[Row]:
    lines = []
    for label, by_replicas in best.items():
        one, two = by_replicas[1].ran, by_replicas[2].ran
        ratio = two.run.requests_per_second / one.run.requests_per_second
        notes = (
            f"CPU per request {one.app_cpu_ms:.1f} -> {two.app_cpu_ms:.1f} ms; "
            f"p50 {one.run.p50_ms:.0f} -> {two.run.p50_ms:.0f} ms, "
            f"p99 {one.run.p99_ms:.0f} -> {two.run.p99_ms:.0f} ms; "
            f"errors {one.run.errors}, {two.run.errors}; with 2, each replica "
            "answered " + " / ".join(f"{s:.0%}" for s in by_replicas[2].shares)
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
    args = command_line(__doc__, BENCH / "replicas-results.md", OUT)
    ensure_tools("wrk", "nginx", "curl")
    fresh_directory(OUT)
    (OUT / "media").mkdir()
    setup_django(ENV)
    recreate_database(DATABASE)
    seed_catalogue()
    analyze()
    about = environment(
        args.out,
        clips="each replica clips_project/gunicorn.py as shipped (cores+1 "
        "gthread workers, 2 threads), CLIPS_STREAM_OFFLOAD=1, NUM_PROXIES=1, "
        "one PostgreSQL on 127.0.0.1, DEBUG=0, rate limits and catalogue caches "
        "off; behind deploy/nginx (render.py, one --upstream per replica)",
        load_generator=f"wrk 4.1 (2 threads; better of {args.rounds} alternating "
        "runs), on the same cores",
    )
    best = measure(args.seconds, args.rounds)
    publish(args.out, table(COLUMNS, rows(best)), about=about)


if __name__ == "__main__":
    main()
