"""Clips behind its edge, against gunicorn alone and a plain nginx: one command.

    .venv/bin/python bench/edge.py [--seconds 8] [--out bench/edge-results.md]

Creates and migrates its own database (clips_edge_bench) and starts, on loopback,
gunicorn alone as Clips ran before the edge (clips_project/gunicorn.py, Python
sends the audio), then the edge: the nginx config of deploy/nginx, rendered by its
render.py, in front of the same gunicorn with CLIPS_STREAM_OFFLOAD=1 and
NUM_PROXIES=1, beside a plain nginx serving the same files. Against each it times
API requests while 200 slow listeners, then 200 slowloris connections, hold it,
and runs wrk on the stream and the catalogue; prints a table and writes
bench/edge-results.md. Needs wrk, nginx and curl. Everything it starts, it stops.
"""

import getpass
import itertools
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

# bench/run.py's helpers: its wrk parser, servers, WAV writer and report.
from run import (
    APP_ENV,
    NGINX_CONF,
    Row,
    Wrk,
    _split,
    _verdict,
    cpu_seconds,
    ensure_tools,
    environment,
    recreate_database,
    report_publish,
    running,
    table,
    wait_until_up,
    worker_pids,
    write_wav,
    wrk,
    wrk_arguments,
)
from run import (
    DATABASE_URL as RUN_DATABASE_URL,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out-edge"
MEDIA = OUT / "media"
HOST = "127.0.0.1"
# bench/run.py's PostgreSQL (BENCH_DATABASE_URL), a database of this script's own.
DATABASE_URL = f"{RUN_DATABASE_URL.rsplit('/', 1)[0]}/clips_edge_bench"
# The production settings of bench/run.py (rate limits off: every client is
# 127.0.0.1), on this benchmark's own database and media.
BASE_ENV = {**APP_ENV, "DATABASE_URL": DATABASE_URL, "MEDIA_ROOT": str(MEDIA)}
MB = 1_000_000
CATALOGUE_CLIPS = 1_000
# The stream measured with wrk, and one longer than any socket buffer: a slow
# listener on it holds its sender for hours.
WAV_CLIPS = {"stream": 5 * MB, "long": 26 * MB}
# What a catalogue clip takes from the sample it stands for.
SAMPLE_FIELDS = (
    "genre",
    "duration",
    "audio_file",
    "content_type",
    "size_bytes",
    "audio_digest",
)
CATALOGUE_FILE = "catalogue-page.json"

SLOW_CLIENTS = 200
READ_BYTES_PER_SECOND = 1024
# A listener's receive window: a phone on a poor network, not loopback's megabytes.
RECEIVE_BUFFER = 4096
# API requests while the slow clients hold the server: list, detail, /metrics in
# turn, one started every API_EVERY seconds, each given API_TIMEOUT seconds.
API_REQUESTS = 60
API_EVERY = 0.2
API_TIMEOUT = 10
# curl prints the status and the seconds taken, also for a request it gave up on.
TIMED_CURL = ["curl", "-s", "-o", "/dev/null", "-m", str(API_TIMEOUT), "-w"]
TIMED_CURL.append("%{http_code} %{time_total}")
# Between the slow clients connecting and the first API request.
SETTLE_SECONDS = 3
WRK_CONNECTIONS = 16
# wrk runs alternate between the servers compared, this many times; the best counts.
ROUNDS = 2
GOAL_API_MAX_MS = 500
GOAL_STREAM_RATIO = 0.9
GOAL_CATALOGUE_RATIO = 0.5
# The PostgreSQL backends serving gunicorn: every one on this database but ours.
BACKENDS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
COLUMNS = ["measure", "gunicorn alone", "edge", "plain nginx", "edge / nginx", "notes"]


def free_ports(count: int) -> list[int]:
    """`count` ports from 39100 up that nothing on loopback holds now.

    Bound as the servers bind them (SO_REUSEADDR), so a port whose last
    connections linger in TIME_WAIT counts as free, as it is for them. Asked
    just before the servers start: loopback clients (ours too) take their
    source ports from the same range.
    """
    ports = []
    for port in range(39_100, 40_000):
        try:
            with socket.create_server((HOST, port)):
                ports.append(port)
        except OSError:
            continue
        if len(ports) == count:
            return ports
    sys.exit("bench: too few free ports in 39100-39999")


def started(url: str) -> None:
    """Wait until a server answers `url` with 200 (bench/run.py's poll)."""
    try:
        wait_until_up(url)
    except SystemExit:
        sys.exit(f"bench: {url} did not come up; see {OUT}")


@dataclass(frozen=True)
class Urls:
    """What one server is asked; /metrics is always gunicorn's own."""

    catalogue: str
    detail: str = ""
    metrics: str = ""
    stream: str = ""
    long: str = ""

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


# --- setting up ---------------------------------------------------------------


def setup_django(env: dict[str, str] = BASE_ENV) -> None:
    """Django in this process, on a benchmark's database: to seed and to meter."""
    os.environ.update(env, DJANGO_SETTINGS_MODULE="clips_project.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_catalogue() -> None:
    """The samples and a catalogue of a thousand clips standing for them."""
    from django.core.management import call_command

    from clips.models import Clip

    call_command("migrate", verbosity=0)
    call_command("loaddata", "sample_clips", verbosity=0)
    samples = list(Clip.objects.order_by("pk"))
    Clip.objects.bulk_create(
        Clip(
            title=f"Catalogue clip {n}",
            description="One of a thousand clips in the edge benchmark.",
            **{field: getattr(sample, field) for field in SAMPLE_FIELDS},
        )
        for n, sample in zip(range(CATALOGUE_CLIPS), itertools.cycle(samples))
    )


def seed() -> dict:
    """The catalogue and the WAV clips, added as a curator adds an upload
    (clip_create); the WAV clips by their WAV_CLIPS key."""
    from django.core.files.uploadedfile import UploadedFile
    from django.db import connection

    from clips.models import Genre
    from clips.services import clip_create

    seed_catalogue()
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
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return clips


def app_urls(base: str, metrics_port: int, clips: dict) -> Urls:
    """A server in front of Clips: the API and the WAV clips' streams."""
    api = f"{base}/api/v1/clips"
    streams = (f"{api}/{clips[key].pk}/stream" for key in ("stream", "long"))
    return Urls(api, f"{api}/1", f"http://{HOST}:{metrics_port}/metrics", *streams)


# --- the servers --------------------------------------------------------------


def gunicorn(port: int, *, offload: bool) -> tuple[list[str], dict[str, str]]:
    """The command and environment of gunicorn as shipped, alone or for the edge."""
    config = ["-c", "clips_project/gunicorn.py"]
    return [sys.executable, "-m", "gunicorn", *config, "clips_project.wsgi"], {
        **BASE_ENV,
        "GUNICORN_BIND": f"{HOST}:{port}",
        "CLIPS_STREAM_OFFLOAD": str(int(offload)),
        "NUM_PROXIES": str(int(offload)),
    }


def rendered_nginx(
    directory: Path, port: int, upstreams: list[int], out: Path = OUT
) -> list[str]:
    """The shipped config in `directory`, rendered as make serve and the tests
    render it, before gunicorns on `upstreams`, for out/media and out/static."""
    (out / "static").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "nginx" / "render.py"),
            str(directory),
            f"--listen={HOST}:{port}",
            *(f"--upstream={HOST}:{upstream}" for upstream in upstreams),
            f"--media-root={out / 'media'}",
            f"--static-root={out / 'static'}",
            f"--access-log={directory / 'access.log'}",
        ],
        check=True,
        capture_output=True,
    )
    return ["nginx", "-c", str(directory / "nginx.conf"), "-e", "stderr"]


def edge_nginx(port: int, upstream: int) -> list[str]:
    return rendered_nginx(OUT / "edge-nginx", port, [upstream])


def plain_nginx(port: int) -> list[str]:
    """bench/run.py's nginx: sendfile, no proxy, the media directory as its root."""
    (OUT / "nginx-tmp").mkdir(exist_ok=True)
    conf = OUT / "nginx.conf"
    # As root nginx's workers would run as nobody, who may not read our media.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    conf.write_text(
        NGINX_CONF.format(user=user, out=OUT, host=HOST, port=port, media=MEDIA)
    )
    return ["nginx", "-p", str(OUT), "-c", str(conf), "-g", "daemon off;"]


# --- slow clients, in a process of their own ------------------------------------


def listeners(url: str, count: int, ready, stop, report) -> None:
    """`count` listeners of `url`, each reading READ_BYTES_PER_SECOND."""
    host, port, path = _split(url)
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
    host, port, path = _split(url)
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
def holding(clients: Callable, url: str) -> Iterator[dict]:
    """SLOW_CLIENTS of a kind on `url` until the block ends; then what they saw."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=clients, args=(url, SLOW_CLIENTS, ready, stop, sender), daemon=True
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


def probe(api: list[str]) -> Probe:
    """API_REQUESTS requests, started at a steady pace; each as curl times it."""
    curls = []
    for n in range(API_REQUESTS):
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


def under(clients: Callable, url: str, api: list[str]) -> tuple[Probe, dict]:
    print(f"bench: {SLOW_CLIENTS} {clients.__name__} on {url}", flush=True)
    with holding(clients, url) as seen:
        time.sleep(SETTLE_SECONDS)
        result = probe(api)
    return result, seen


def recovered(url: str) -> None:
    """Wait until a server the slow clients held answers again."""
    started(url)
    time.sleep(SETTLE_SECONDS)


# The processes whose CPU time counts for a server: (gunicorn master, nginx master).
Servers = tuple[int | None, int | None]


@dataclass(frozen=True)
class Throughput:
    run: Wrk
    app_cpu_ms: float  # gunicorn and its PostgreSQL backends, per request
    nginx_cpu_ms: float


# What wrk measures on each server: the key of the URL in Urls, the row, and
# whether bytes or requests count.
THROUGHPUT = [
    *(
        (key, f"stream {size // MB} MB, {WRK_CONNECTIONS} conn.", "MB/s")
        for key, size in WAV_CLIPS.items()
    ),
    ("catalogue", f"GET /api/v1/clips (anonymous), {WRK_CONNECTIONS} conn.", "req/s"),
]


def rate(run: Wrk, unit: str) -> float:
    return run.megabytes_per_second if unit == "MB/s" else run.requests_per_second


def cpu_used(gunicorn: int | None, nginx: int | None) -> dict[str, float]:
    """CPU seconds used so far, by part: "app" for gunicorn (master, live and
    finished workers) and each PostgreSQL backend, "nginx" for nginx's workers."""
    from django.db import connection

    used = {}
    if gunicorn:
        workers = sum(map(cpu_seconds, worker_pids(gunicorn)))
        used["app"] = cpu_seconds(gunicorn, children=True) + workers
        with connection.cursor() as cursor:
            cursor.execute(BACKENDS)
            used |= {f"app {pid}": cpu_seconds(pid) for (pid,) in cursor.fetchall()}
    if nginx:
        used["nginx"] = sum(map(cpu_seconds, worker_pids(nginx)))
    return used


def cpu_ms(before: dict[str, float], after: dict[str, float], part: str) -> float:
    """CPU seconds a part used between two readings. A backend that ended in
    between (its gunicorn worker was recycled) took its last seconds with it."""
    return sum(
        seconds - before.get(name, 0.0)
        for name, seconds in after.items()
        if name.startswith(part)
    )


def throughput(servers: dict[str, tuple[Urls, Servers]], seconds: int) -> dict:
    """wrk on each server in turn, ROUNDS times per measure; the best run of each."""
    measured: dict[str, dict[str, Throughput]] = {name: {} for name in servers}
    for key, label, unit in THROUGHPUT:
        print(f"bench: {label}", flush=True)
        for _ in range(ROUNDS):
            for name, (urls, processes) in servers.items():
                before = cpu_used(*processes)
                run = wrk(getattr(urls, key), WRK_CONNECTIONS, seconds)
                after = cpu_used(*processes)
                app, nginx = (
                    cpu_ms(before, after, part) * 1000 / run.requests
                    for part in ("app", "nginx")
                )
                best = measured[name].get(key)
                if best is None or rate(run, unit) > rate(best.run, unit):
                    measured[name][key] = Throughput(run, app, nginx)
    return measured


# --- the run ------------------------------------------------------------------


def measure_alone(clips: dict, seconds: int) -> dict:
    (port,) = free_ports(1)
    alone = app_urls(f"http://{HOST}:{port}", port, clips)
    command, env = gunicorn(port, offload=False)
    with running(command, OUT / "gunicorn-alone.log", env) as app:
        started(alone.catalogue)
        print("bench: gunicorn alone", flush=True)
        wrk(alone.catalogue, WRK_CONNECTIONS, 2)
        measured = throughput({"alone": (alone, (app, None))}, seconds)["alone"]
        measured["listeners"] = under(listeners, alone.long, alone.api)
        recovered(alone.catalogue)
        measured["slowloris"] = under(slowloris, alone.catalogue, alone.api)
    return measured


def measure_edge(clips: dict, seconds: int) -> tuple[dict, dict]:
    """The edge, and beside it a plain nginx with the same files."""
    app_port, edge_port, nginx_port = free_ports(3)
    edge = app_urls(f"http://{HOST}:{edge_port}", app_port, clips)
    static = f"http://{HOST}:{nginx_port}"
    plain = Urls(
        catalogue=f"{static}/{CATALOGUE_FILE}",
        stream=f"{static}/{clips['stream'].audio_file.name}",
        long=f"{static}/{clips['long'].audio_file.name}",
    )
    command, env = gunicorn(app_port, offload=True)
    with ExitStack() as servers:
        app = servers.enter_context(running(command, OUT / "gunicorn.log", env))
        front = servers.enter_context(
            running(edge_nginx(edge_port, app_port), OUT / "edge-nginx.log")
        )
        nginx = servers.enter_context(
            running(plain_nginx(nginx_port), OUT / "nginx.log")
        )
        started(edge.catalogue)
        started(edge.metrics)
        # The catalogue's answer, as a static file of the same bytes for nginx.
        with urllib.request.urlopen(edge.catalogue, timeout=10) as page:  # noqa: S310
            (MEDIA / CATALOGUE_FILE).write_bytes(page.read())
        started(plain.catalogue)
        print("bench: the edge", flush=True)
        slow = {
            "listeners": under(listeners, edge.long, edge.api),
            "slowloris": under(slowloris, edge.catalogue, edge.api),
        }
        recovered(edge.catalogue)
        wrk(edge.stream, WRK_CONNECTIONS, 2)
        measured = throughput(
            {
                "edge": (edge, (app, front)),
                "plain": (plain, (None, nginx)),
            },
            seconds,
        )
    return measured["edge"] | slow, measured["plain"]


def rows_and_goals(alone: dict, edge: dict, plain: dict) -> tuple[list[Row], list[Row]]:
    alone_api, alone_seen = alone["listeners"]
    edge_api, edge_seen = edge["listeners"]
    alone_loris, alone_cut = alone["slowloris"]
    edge_loris, edge_cut = edge["slowloris"]
    rows = [
        [
            f"API under {SLOW_CLIENTS} slow listeners "
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
            f"API under {SLOW_CLIENTS} slowloris connections (headers at 1 byte/s)",
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
    for key, label, unit in THROUGHPUT:
        measured = [alone[key], edge[key], plain[key]]
        ratios[key] = rate(edge[key].run, unit) / rate(plain[key].run, unit)
        rows.append(
            [
                label,
                *(f"{rate(m.run, unit):,.0f} {unit}" for m in measured),
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
    goals = [
        [
            f"{SLOW_CLIENTS} slow listeners through the edge: API list, detail, "
            f"/metrics 0 failures, max < {GOAL_API_MAX_MS} ms",
            str(edge_api),
            _verdict(edge_api.met),
        ],
        [
            f"{SLOW_CLIENTS} slowloris connections through the edge: the same",
            str(edge_loris),
            _verdict(edge_loris.met),
        ],
        [
            f"stream through the edge >= {GOAL_STREAM_RATIO:.0%} of nginx "
            f"({WRK_CONNECTIONS} conn., {WAV_CLIPS['stream'] // MB} MB file)",
            f"{ratios['stream']:.0%} ({WAV_CLIPS['long'] // MB} MB file: "
            f"{ratios['long']:.0%})",
            _verdict(ratios["stream"] >= GOAL_STREAM_RATIO),
        ],
        [
            f"anonymous catalogue through the edge >= {GOAL_CATALOGUE_RATIO:.0%} "
            "of nginx's rate for a small static file",
            f"{ratios['catalogue']:.0%}",
            _verdict(ratios["catalogue"] >= GOAL_CATALOGUE_RATIO),
        ],
    ]
    return rows, goals


def about() -> dict[str, str]:
    """bench/run.py's description of the machine, with this run's servers."""
    return environment() | {
        "Clips": "clips_project/gunicorn.py as shipped (cores+1 gthread "
        "workers, 2 threads), PostgreSQL on 127.0.0.1, DEBUG=0, stream rate "
        "limit off; alone: Python sends the audio; edge: CLIPS_STREAM_OFFLOAD=1, "
        "NUM_PROXIES=1 behind deploy/nginx (rendered by deploy/nginx/render.py)",
        "load generator": f"wrk 4.1 (2 threads; better of {ROUNDS} alternating "
        f"runs), curl (API: {API_REQUESTS} requests, one each {API_EVERY} s, "
        f"{API_TIMEOUT} s timeout), slow clients from a Python process of their "
        "own; all on the same cores",
    }


def prepare() -> dict:
    """Tools, an empty output directory, a fresh database, seeded."""
    ensure_tools()
    shutil.rmtree(OUT, ignore_errors=True)
    MEDIA.mkdir(parents=True)
    setup_django()
    recreate_database(DATABASE_URL)
    return seed()


def main() -> None:
    args = wrk_arguments(__doc__, ROOT / "bench" / "edge-results.md")
    clips = prepare()
    described = about()
    before = measure_alone(clips, args.seconds)
    after, nginx = measure_edge(clips, args.seconds)
    rows, goals = rows_and_goals(before, after, nginx)
    report_publish(
        args.out,
        described,
        table(COLUMNS, rows),
        table(["goal", "measured", "verdict"], goals),
    )


if __name__ == "__main__":
    main()
