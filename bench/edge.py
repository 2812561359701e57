"""Clips behind its edge, against gunicorn alone and a plain nginx: one command.

    .venv/bin/python bench/edge.py [--seconds 8] [--quick] [--out bench/edge-results.md]

Creates and migrates its own database (clips_edge_bench) and starts, on loopback,
gunicorn alone as Clips ran before the edge (clips_project/gunicorn.py, Python
sends the audio), then the edge: the nginx config of deploy/nginx, rendered by its
render.py, in front of the same gunicorn with CLIPS_STREAM_OFFLOAD=1 and
NUM_PROXIES=1, beside a plain nginx serving the same files. Against each it times
API requests while slow listeners, then slowloris connections, hold it, and runs
wrk on the stream and the catalogue; prints a table and writes
bench/edge-results.md. Needs wrk, nginx and curl. Everything it starts, it stops.
"""

import multiprocessing
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Literal

from harness import (
    BENCH,
    MB,
    WRK_CONNECTIONS,
    Meter,
    Metered,
    Row,
    Server,
    analyze,
    best_of,
    command_line,
    database_url,
    edge_site,
    environment,
    fresh_site,
    gunicorn,
    metered_wrk,
    publish,
    redis_server,
    seed_catalogue,
    serve,
    split_url,
    static_nginx,
    table,
    verdict,
    wait_until_up,
    write_wav,
    wrk,
)

OUT = BENCH / "out-edge"
MEDIA = OUT / "media"
DATABASE = database_url("clips_edge_bench")
# The stream measured with wrk, and one longer than any socket buffer: a slow
# listener on it holds its sender for hours.
WAV_CLIPS = {"stream": 5 * MB, "long": 26 * MB}
CATALOGUE_FILE = "catalogue-page.json"
READ_BYTES_PER_SECOND = 1024
# A listener's receive window: a phone on a poor network, not loopback's megabytes.
RECEIVE_BUFFER = 4096
# API requests while the slow clients hold the server: list, detail, /metrics in
# turn, one started every API_EVERY seconds, each given API_TIMEOUT seconds.
API_EVERY = 0.2
API_TIMEOUT = 10
# curl prints the status and the seconds taken, also for a request it gave up on.
TIMED_CURL = ["curl", "-s", "-o", "/dev/null", "-m", str(API_TIMEOUT), "-w"]
TIMED_CURL.append("%{http_code} %{time_total}")
# Between the slow clients connecting and the first API request.
SETTLE_SECONDS = 3
GOAL_API_MAX_MS = 500
GOAL_STREAM_RATIO = 0.9
GOAL_PREVIEW_RATIO = 0.5
GOAL_DECISION_CPU_MS = 1.0
# The sample whose preview (a real one, made by the ingest) is streamed.
PREVIEW_CLIP = 1
GOAL_CATALOGUE_RATIO = 0.5
COLUMNS = ["measure", "gunicorn alone", "edge", "plain nginx", "edge / nginx", "notes"]


@dataclass(frozen=True)
class Load:
    """How many slow clients hold a server, and API requests are timed meanwhile."""

    slow_clients: int = 200
    api_requests: int = 60


QUICK = Load(slow_clients=20, api_requests=10)


@dataclass(frozen=True)
class Urls:
    """What one server is asked; /metrics is always gunicorn's own."""

    catalogue: str
    detail: str = ""
    metrics: str = ""
    stream: str = ""
    long: str = ""
    preview: str = ""

    @property
    def api(self) -> list[str]:
        return [self.catalogue, self.detail, self.metrics]


@dataclass(frozen=True)
class Probe:
    """API requests timed while slow clients held the server."""

    failed: int
    sent: int
    p50_ms: float
    max_ms: float

    def __str__(self) -> str:
        return (
            f"{self.failed} of {self.sent} failed; "
            f"p50 {self.p50_ms:,.0f} ms, max {self.max_ms:,.0f} ms"
        )

    @property
    def met(self) -> bool:
        return self.failed == 0 and self.max_ms < GOAL_API_MAX_MS


def seed() -> dict:
    """The catalogue, the WAV clips added as a curator adds an upload
    (clip_create), by their WAV_CLIPS key, and PREVIEW_CLIP's preview rendition
    (as "preview")."""
    from django.core.files.uploadedfile import UploadedFile

    from clips.ingest.pipeline import clip_ingest
    from clips.models import Genre, Rendition, RenditionName
    from clips.services import clip_create

    seed_catalogue()
    previews = Rendition.objects.filter(name=RenditionName.PREVIEW)
    if not previews.filter(clip_id=PREVIEW_CLIP).exists():  # not ingested at loaddata
        clip_ingest(clip_id=PREVIEW_CLIP)
    clips = {}
    for key, size in WAV_CLIPS.items():
        wav = OUT / "wav" / f"clip-{size // MB}mb.wav"
        write_wav(wav, size)
        with wav.open("rb") as audio:
            clips[key] = clip_create(
                title=f"Edge benchmark, {size // MB} MB",
                genre=Genre.OTHER,
                duration=min(3600, size / 44_100),
                audio_file=UploadedFile(
                    audio, name=wav.name, content_type="audio/wav", size=size
                ),
            )
    analyze()
    clips["preview"] = previews.get(clip_id=PREVIEW_CLIP)
    return clips


def app_urls(front: Server, app: Server, clips: dict) -> Urls:
    """A server in front of Clips (or Clips itself): the API and the streams."""
    api = f"{front.base}/api/v1/clips"
    streams = (f"{api}/{clips[key].pk}/stream" for key in ("stream", "long"))
    preview = f"{api}/{PREVIEW_CLIP}/stream"
    return Urls(api, f"{api}/1", f"{app.base}/metrics", *streams, preview=preview)


# --- slow clients, in a process of their own ------------------------------------


def listeners(url: str, count: int, ready, stop, report) -> None:
    """`count` listeners of `url`, each reading READ_BYTES_PER_SECOND."""
    host, port, path = split_url(url)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sockets, statuses, read = [], [0] * count, [0] * count
    for _ in range(count):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        listener.connect((host, port))
        listener.sendall(request)
        listener.setblocking(False)
        sockets.append(listener)
    ready.set()
    started = time.monotonic()
    while not stop.wait(1):
        for n, listener in enumerate(sockets):
            if listener.fileno() < 0:
                continue
            try:
                data = listener.recv(READ_BYTES_PER_SECOND)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                listener.close()
                continue
            if not statuses[n]:
                statuses[n] = int(data.split(maxsplit=2)[1])
            read[n] += len(data)
    seconds = time.monotonic() - started
    for listener in sockets:
        listener.close()
    report.send(
        {
            "answered": statuses.count(200),
            "bytes_per_second": statistics.mean(read) / seconds,
        }
    )


def slowloris(url: str, count: int, ready, stop, report) -> None:
    """`count` connections sending a request's headers one byte a second, never
    ending them; one the server closes is opened again, as an attacker would."""
    host, port, path = split_url(url)
    head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Slow: ".encode()

    def opened() -> list:
        connection = socket.create_connection((host, port))
        connection.setblocking(False)
        return [connection, 0, time.monotonic()]

    connections = [opened() for _ in range(count)]
    ready.set()
    lifetimes = []
    while not stop.wait(1):
        for n, (connection, sent, since) in enumerate(connections):
            try:
                connection.recv(4096)  # b"" once closed, or the server's 4xx
            except BlockingIOError:  # nothing to read: still waiting for us
                try:
                    connection.send(head[sent : sent + 1] or b"a")
                    connections[n][1] += 1
                    continue
                except OSError:
                    pass
            except OSError:
                pass
            lifetimes.append(time.monotonic() - since)
            connection.close()
            connections[n] = opened()
    for connection, _, _ in connections:
        connection.close()
    report.send(
        {
            "cut": len(lifetimes),
            "median_lifetime": statistics.median(lifetimes) if lifetimes else 0,
        }
    )


@contextmanager
def holding(clients: Callable, url: str, count: int) -> Iterator[dict]:
    """`count` slow clients of a kind on `url` until the block ends; then what
    they saw."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=clients, args=(url, count, ready, stop, sender), daemon=True
    )
    process.start()
    seen: dict = {}
    try:
        if not ready.wait(60):
            sys.exit(f"bench: {clients.__name__} could not connect to {url}")
        yield seen
    finally:
        stop.set()
        if receiver.poll(30):
            seen.update(receiver.recv())
        process.join(10)
        if process.is_alive():
            process.kill()


def probe(api: list[str], requests: int) -> Probe:
    """`requests` API requests, started at a steady pace; each as curl times it."""
    curls = []
    for n in range(requests):
        curls.append(
            subprocess.Popen(
                [*TIMED_CURL, api[n % len(api)]],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        time.sleep(API_EVERY)
    failed, times = 0, []
    for curl in curls:
        status, seconds = curl.communicate()[0].split()
        failed += curl.returncode != 0 or status != "200"
        times.append(float(seconds) * 1000)
    return Probe(failed, len(curls), statistics.median(times), max(times))


def under(clients: Callable, url: str, api: list[str], load: Load):
    """The API timed while slow clients hold `url`: (Probe, what they saw)."""
    print(f"bench: {load.slow_clients} {clients.__name__} on {url}", flush=True)
    with holding(clients, url, load.slow_clients) as seen:
        time.sleep(SETTLE_SECONDS)
        result = probe(api, load.api_requests)
    return result, seen


def recovered(url: str) -> None:
    """Wait until a server the slow clients held answers again."""
    wait_until_up(url)
    time.sleep(SETTLE_SECONDS)


@dataclass(frozen=True)
class Throughput:
    """What wrk measures on each server: `url`, Urls' attribute, asked by one
    listener (or a new one each request), and whether bytes or requests count."""

    name: str
    url: str
    label: str
    unit: str
    listeners: Literal["new", "same"] = "same"


THROUGHPUT = [
    Throughput(
        "preview",
        "preview",
        f"stream a sample's preview, one listener, {WRK_CONNECTIONS} conn.",
        "req/s",
    ),
    Throughput(
        "preview_new",
        "preview",
        f"the same, each request a new listener, {WRK_CONNECTIONS} conn.",
        "req/s",
        listeners="new",
    ),
    *(
        Throughput(key, key, f"stream {size // MB} MB, {WRK_CONNECTIONS} conn.", "MB/s")
        for key, size in WAV_CLIPS.items()
    ),
    Throughput(
        "catalogue",
        "catalogue",
        f"GET /api/v1/clips (anonymous), {WRK_CONNECTIONS} conn.",
        "req/s",
    ),
]


def rate(ran: Metered, unit: str) -> float:
    run = ran.run
    return run.megabytes_per_second if unit == "MB/s" else run.requests_per_second


def throughput(servers: dict[str, tuple[Urls, Meter]], seconds: int, rounds: int):
    """wrk on each server in turn, `rounds` times per measure; the best run of
    each, by server name and measure."""
    measured: dict[str, dict[str, Metered]] = {name: {} for name in servers}
    for measure in THROUGHPUT:
        print(f"bench: {measure.label}", flush=True)
        runs = {
            name: partial(
                metered_wrk,
                meter,
                getattr(urls, measure.url),
                WRK_CONNECTIONS,
                seconds,
                listeners=measure.listeners,
            )
            for name, (urls, meter) in servers.items()
        }
        best = best_of(runs, partial(rate, unit=measure.unit), rounds)
        for name, ran in best.items():
            measured[name][measure.name] = ran
    return measured


# --- the run ------------------------------------------------------------------


def measure_alone(
    env: dict, clips: dict, seconds: int, rounds: int, load: Load
) -> dict:
    with gunicorn(env, OUT / "gunicorn-alone.log") as app:
        alone = app_urls(app, app, clips)
        print("bench: gunicorn alone", flush=True)
        wrk(alone.catalogue, WRK_CONNECTIONS, 2)
        meter = Meter((app.pid,), (), DATABASE)
        measured = throughput({"alone": (alone, meter)}, seconds, rounds)["alone"]
        measured["listeners"] = under(listeners, alone.long, alone.api, load)
        recovered(alone.catalogue)
        measured["slowloris"] = under(slowloris, alone.catalogue, alone.api, load)
    return measured


def measure_edge(env: dict, clips: dict, seconds: int, rounds: int, load: Load):
    """The edge, and beside it a plain nginx with the same files."""
    with ExitStack() as servers:
        app, front = edge_site(servers, env, OUT)
        edge = app_urls(front, app, clips)
        wait_until_up(edge.metrics)
        # The catalogue's answer, as a static file of the same bytes for nginx.
        with urllib.request.urlopen(edge.catalogue, timeout=10) as page:  # noqa: S310
            (MEDIA / CATALOGUE_FILE).write_bytes(page.read())
        nginx = servers.enter_context(
            serve(static_nginx(OUT, MEDIA), OUT / "nginx.log", up=f"/{CATALOGUE_FILE}")
        )
        plain = Urls(
            catalogue=f"{nginx.base}/{CATALOGUE_FILE}",
            stream=f"{nginx.base}/{clips['stream'].audio_file.name}",
            long=f"{nginx.base}/{clips['long'].audio_file.name}",
            preview=f"{nginx.base}/{clips['preview'].file.name}",
        )
        print("bench: the edge", flush=True)
        slow = {
            "listeners": under(listeners, edge.long, edge.api, load),
            "slowloris": under(slowloris, edge.catalogue, edge.api, load),
        }
        recovered(edge.catalogue)
        wrk(edge.stream, WRK_CONNECTIONS, 2)
        measured = throughput(
            {
                "edge": (edge, Meter((app.pid,), (front.pid,), DATABASE)),
                "plain": (plain, Meter((), (nginx.pid,))),
            },
            seconds,
            rounds,
        )
    return measured["edge"] | slow, measured["plain"]


def rows_and_goals(
    alone: dict, edge: dict, plain: dict, load: Load, preview_name: str
) -> tuple[list[Row], list[Row]]:
    alone_api, alone_seen = alone["listeners"]
    edge_api, edge_seen = edge["listeners"]
    alone_loris, alone_cut = alone["slowloris"]
    edge_loris, edge_cut = edge["slowloris"]
    rows = [
        [
            f"API under {load.slow_clients} slow listeners "
            f"({READ_BYTES_PER_SECOND // 1024} KB/s each, "
            f"{WAV_CLIPS['long'] // MB} MB clip)",
            str(alone_api),
            str(edge_api),
            "",
            "",
            f"listeners answered (200 and headers): {alone_seen['answered']} alone, "
            f"{edge_seen['answered']} through the edge; each read "
            f"{edge_seen['bytes_per_second']:,.0f} B/s through the edge",
        ],
        [
            f"API under {load.slow_clients} slowloris connections "
            "(headers at 1 byte/s)",
            str(alone_loris),
            str(edge_loris),
            "",
            "",
            f"connections the server closed: {alone_cut['cut']} alone, "
            f"{edge_cut['cut']} through the edge (median after "
            f"{edge_cut['median_lifetime']:.0f} s; each opened again)",
        ],
    ]
    ratios = {}
    for measure in THROUGHPUT:
        key, unit = measure.name, measure.unit
        measured = [alone[key], edge[key], plain[key]]
        ratios[key] = rate(edge[key], unit) / rate(plain[key], unit)
        rows.append(
            [
                measure.label,
                *(f"{rate(m, unit):,.0f} {unit}" for m in measured),
                f"{ratios[key]:.0%}",
                "p50 "
                + " / ".join(f"{m.run.p50_ms:.1f}" for m in measured)
                + " ms; errors "
                + "/".join(str(m.run.errors) for m in measured)
                + "; server CPU per request (app + nginx) "
                + " / ".join(
                    f"{m.app_cpu_ms:.2f} + {m.nginx_cpu_ms:.2f}" for m in measured
                )
                + " ms",
            ]
        )
    size = (MEDIA / CATALOGUE_FILE).stat().st_size
    rows[-1][-1] = f"nginx: the same {size:,}-byte answer as a file; " + rows[-1][-1]
    preview_bytes = (MEDIA / preview_name).stat().st_size
    rows[2][-1] = (
        f"{preview_bytes:,} B (clip {PREVIEW_CLIP}'s MP3 preview); " + rows[2][-1]
    )
    decision_ms = edge["preview_new"].app_cpu_ms
    goals = [
        [
            f"{load.slow_clients} slow listeners through the edge: API list, "
            f"detail, /metrics 0 failures, max < {GOAL_API_MAX_MS} ms",
            str(edge_api),
            verdict(edge_api.met),
        ],
        [
            f"{load.slow_clients} slowloris connections through the edge: the same",
            str(edge_loris),
            verdict(edge_loris.met),
        ],
        [
            f"a sample's preview through the edge >= {GOAL_PREVIEW_RATIO:.0%} of "
            f"nginx ({WRK_CONNECTIONS} conn., one listener)",
            f"{ratios['preview']:.0%} (each request a new listener: "
            f"{ratios['preview_new']:.0%})",
            verdict(ratios["preview"] >= GOAL_PREVIEW_RATIO),
        ],
        [
            f"stream through the edge >= {GOAL_STREAM_RATIO:.0%} of nginx "
            f"({WRK_CONNECTIONS} conn., {WAV_CLIPS['stream'] // MB} MB and "
            f"{WAV_CLIPS['long'] // MB} MB files)",
            f"{ratios['stream']:.0%} and {ratios['long']:.0%}",
            verdict(min(ratios["stream"], ratios["long"]) >= GOAL_STREAM_RATIO),
        ],
        [
            f"a stream decision by the app <= {GOAL_DECISION_CPU_MS:g} ms of server "
            "CPU (gunicorn and PostgreSQL; each request a new listener, so each "
            "counts a play)",
            f"{decision_ms:.2f} ms",
            verdict(decision_ms <= GOAL_DECISION_CPU_MS),
        ],
        [
            f"anonymous catalogue through the edge >= {GOAL_CATALOGUE_RATIO:.0%} "
            "of nginx's rate for a small static file",
            f"{ratios['catalogue']:.0%}",
            verdict(ratios["catalogue"] >= GOAL_CATALOGUE_RATIO),
        ],
    ]
    return rows, goals


def main() -> None:
    args = command_line(__doc__, BENCH / "edge-results.md", OUT)
    load = QUICK if args.quick else Load()
    env = fresh_site(OUT, DATABASE, "wrk", "nginx", "curl", "redis-server")
    clips = seed()
    about = environment(
        args.out,
        clips="clips_project/gunicorn.py as shipped (cores+1 gthread workers, "
        "2 threads), PostgreSQL on 127.0.0.1, a Redis of its own (REDIS_URL: "
        "rate limits, stream facts, listen notes), DEBUG=0, stream rate limit off; "
        "alone: Python sends the audio; edge: CLIPS_STREAM_OFFLOAD=1, "
        "NUM_PROXIES=1 behind deploy/nginx (rendered by deploy/nginx/render.py)",
        load_generator=f"wrk 4.1 (2 threads; better of {args.rounds} alternating "
        f"runs), curl (API: {load.api_requests} requests, one each {API_EVERY} s, "
        f"{API_TIMEOUT} s timeout), slow clients from a Python process of their "
        "own; all on the same cores",
    )
    with redis_server(OUT / "redis.log") as redis_url:
        env |= {"REDIS_URL": redis_url}
        alone = measure_alone(env, clips, args.seconds, args.rounds, load)
        edge, nginx = measure_edge(env, clips, args.seconds, args.rounds, load)
    rows, goals = rows_and_goals(
        alone, edge, nginx, load, preview_name=clips["preview"].file.name
    )
    publish(
        args.out,
        table(COLUMNS, rows),
        table(["goal", "measured", "verdict"], goals),
        about=about,
    )


if __name__ == "__main__":
    main()
