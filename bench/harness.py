"""What the benchmarks in bench/ share: servers, wrk, CPU meters and reports.

Each benchmark script (see bench/README.md) imports from here. Servers are
started on loopback ports picked when they start, run in their own process
groups and are stopped when their `with` block ends; every figure goes to a
results file beside the script, between markers that keep the notes around it.
"""

import argparse
import functools
import getpass
import itertools
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HOST = "127.0.0.1"
MB = 1_000_000
# The PostgreSQL server of every benchmark; each script names its own databases.
SERVER_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/clips_bench"
).rsplit("/", 1)[0]
CATALOGUE_CLIPS = 1_000
# wrk's connections when servers are compared run by run.
WRK_CONNECTIONS = 16
# Runs alternate between the servers compared, this many times; the best counts.
ROUNDS = 2
# Loopback ports the servers may take. Clients' source ports come from the same
# range, so a port is picked just before its server starts, never in advance.
PORTS = range(39_100, 40_000)
# In a results file the scripts rewrite what lies between these, and keep the rest.
BEGIN, END = "<!-- bench:start -->", "<!-- bench:end -->"

Row = list[str]
T = TypeVar("T")


def database_url(name: str) -> str:
    """A database of that name on the benchmarks' PostgreSQL (BENCH_DATABASE_URL)."""
    return f"{SERVER_URL}/{name}"


def app_env(database: str, media: Path, **more: str) -> dict[str, str]:
    """Production settings on loopback, no TLS in front, on a benchmark's own
    database and media. Rate limits and the cap of plays per address are off:
    every client here is 127.0.0.1."""
    return {
        "DATABASE_URL": database,
        "MEDIA_ROOT": str(media),
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-not-a-secret",
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "CLIPS_THROTTLE_STREAM": "",
        "CLIPS_THROTTLE_WRITE": "",
        "CLIPS_PLAYS_PER_ADDRESS": "0",
        **more,
    }


# --- setting up ---------------------------------------------------------------


def ensure_tools(*tools: str) -> None:
    """Install the Debian packages a benchmark runs when missing (as root), so a
    fresh machine needs no step by hand; otherwise say which to install."""
    missing = [tool for tool in tools if not shutil.which(tool)]
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


def fresh_directory(path: Path) -> Path:
    """An empty directory for a run's files and logs: nothing of a past run stays."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, on a benchmark's database: to seed and to read."""
    os.environ.update(env, DJANGO_SETTINGS_MODULE="clips_project.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fresh_site(out: Path, database: str, *tools: str) -> dict[str, str]:
    """What a benchmark of the app starts from: `tools` installed, an empty `out`
    with out/media, Django set up in this process on a new `database`. Returns the
    app's environment (app_env)."""
    ensure_tools(*tools)
    fresh_directory(out)
    (out / "media").mkdir()
    env = app_env(database, out / "media")
    setup_django(env)
    recreate_database(database)
    return env


def recreate_database(url: str) -> None:
    """Drop and create a bench database, so every run starts from the same state."""
    name = url.rsplit("/", 1)[1]
    with _admin_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _admin_connection():
    import psycopg

    return psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True)


def analyze() -> None:
    """Fresh planner statistics: autovacuum may not have seen the new rows yet."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def catalogue_clip(n: int, sample) -> dict:
    """The fields of the n-th catalogue clip, standing for one of the samples: the
    catalogue of bench/edge.py and bench/replicas.py."""
    fields = ("genre", "duration", "audio_file", "content_type", "size_bytes")
    return {
        "title": f"Catalogue clip {n}",
        "description": "One of a thousand clips in the edge benchmark.",
        "audio_digest": sample.audio_digest,
        **{field: getattr(sample, field) for field in fields},
    }


def seed_catalogue(clip: Callable[[int, object], dict] = catalogue_clip):
    """Migrate, load the samples and add CATALOGUE_CLIPS clips, each made by
    `clip` from a sample in turn: a catalogue whose pages look like a real one's.
    They are ready, as the samples are: listeners see no other clip. Returns the
    samples and the catalogue's clips."""
    from django.core.management import call_command

    from clips.models import Clip, ClipStatus

    call_command("migrate", verbosity=0)
    call_command("loaddata", "sample_clips", verbosity=0)
    samples = list(Clip.objects.order_by("pk"))
    clips = Clip.objects.bulk_create(
        Clip(status=ClipStatus.READY, **clip(n, sample))
        for n, sample in zip(range(CATALOGUE_CLIPS), itertools.cycle(samples))
    )
    return samples, clips


def write_wav(path: Path, size: int) -> None:
    """A valid WAV of `size` bytes (silence after the header), written in blocks:
    any size of clip without shipping one."""
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


# --- git ------------------------------------------------------------------------


def git(*args: str) -> str:
    """A git command in this checkout: revisions to compare, the report's code."""
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def default_reference() -> str:
    """Where this branch left main (on main itself: HEAD), or HEAD without a main."""
    try:
        return git("merge-base", "HEAD", "main")
    except subprocess.CalledProcessError:
        return "HEAD"


def revision(ref: str) -> str:
    """A revision as a report names it: its short id and date, and the name it was
    asked by unless that was an id."""
    described = git("log", "-1", "--format=%h, committed %cs", ref)
    if re.fullmatch(r"[0-9a-f]{4,40}", ref):
        return described
    return f"{described}, asked as {ref}"


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """A revision in a temporary git worktree, removed on exit."""
    path = Path(tempfile.mkdtemp(prefix="clips-bench-reference-"))
    git("worktree", "add", "--quiet", "--detach", str(path), ref)
    try:
        yield path
    finally:
        git("worktree", "remove", "--force", str(path))


# --- servers --------------------------------------------------------------------


_taken: set[int] = set()


def free_port() -> int:
    """A loopback port nothing holds now, never the same twice in a run (a server
    started a moment ago may not have bound its own yet). Bound as servers bind
    (SO_REUSEADDR), so one whose last connections linger in TIME_WAIT is free."""
    for port in PORTS:
        if port in _taken:
            continue
        try:
            with socket.create_server((HOST, port)):
                _taken.add(port)
                return port
        except OSError:
            continue
    sys.exit(f"bench: no free port in {PORTS.start}-{PORTS.stop - 1}")


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


def wait_until_up(url: str, log: Path | None = None) -> None:
    """Poll until `url` answers 200; give up after 30 s, naming the server's log."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"bench: {url} did not come up" + (f"; see {log}" if log else ""))


@dataclass(frozen=True)
class Server:
    """A server that `serve` started: its process group's leader and its port."""

    pid: int
    port: int

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextmanager
def serve(
    command: Callable[[int], list[str]],
    log: Path,
    env: dict | Callable[[int], dict] | None = None,
    cwd: Path = ROOT,
    up: str | None = None,
) -> Iterator[Server]:
    """`command(port)` on a port picked now (`env` may depend on it too); with
    `up`, wait until that path answers 200 before the block runs."""
    port = free_port()
    env = env(port) if callable(env) else env
    with running(command(port), log, env, cwd) as pid:
        server = Server(pid, port)
        if up is not None:
            wait_until_up(server.base + up, log)
        yield server


@contextmanager
def redis_server(log: Path) -> Iterator[str]:
    """A Redis of the benchmark's own that keeps nothing on disk, as make serve and
    compose run one for the rate limits and caches; yields its REDIS_URL."""
    port = free_port()
    command = ["redis-server", "--bind", HOST, "--port", str(port)]
    command += ["--save", "", "--appendonly", "no"]
    with running(command, log):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"bench: redis-server did not come up; see {log}")
        yield f"redis://{HOST}:{port}/0"


def gunicorn(
    env: dict[str, str], log: Path, cwd: Path = ROOT, up: str = "/api/v1/clips"
):
    """Clips as shipped: gunicorn with this checkout's production config
    (clips_project/gunicorn.py) for whichever code is in `cwd`, so that two
    revisions compared run under the same one. A context manager, as `serve`."""
    command = [sys.executable, "-m", "gunicorn", "-c"]
    command += [str(ROOT / "clips_project" / "gunicorn.py"), "clips_project.wsgi"]
    return serve(
        lambda port: command,
        log,
        lambda port: {**env, "GUNICORN_BIND": f"{HOST}:{port}"},
        cwd,
        up,
    )


def edge_site(
    servers: ExitStack, env: dict[str, str], out: Path
) -> tuple[Server, Server]:
    """gunicorn as shipped behind the shipped nginx config, as make serve runs them
    (CLIPS_STREAM_OFFLOAD=1, NUM_PROXIES=1), until `servers` closes; logs in `out`,
    media in out/media. Returns (gunicorn, nginx) once the edge answers."""
    offload = {"CLIPS_STREAM_OFFLOAD": "1", "NUM_PROXIES": "1"}
    app = servers.enter_context(gunicorn(env | offload, out / "gunicorn.log"))
    front = servers.enter_context(
        serve(
            edge_nginx(out / "edge-nginx", [app.port], out),
            out / "edge-nginx.log",
            up="/api/v1/clips",
        )
    )
    return app, front


STATIC_NGINX_CONF = """\
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


def static_nginx(out: Path, media: Path) -> Callable[[int], list[str]]:
    """Plain nginx (sendfile, no proxy) serving `media`: the reference a Python
    server's stream is held against. Its config and logs go to `out`."""

    def command(port: int) -> list[str]:
        (out / "nginx-tmp").mkdir(parents=True, exist_ok=True)
        conf = out / "nginx.conf"
        # As root nginx's workers would run as nobody, who may not read our media.
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        conf.write_text(
            STATIC_NGINX_CONF.format(
                user=user, out=out, host=HOST, port=port, media=media.resolve()
            )
        )
        return ["nginx", "-p", str(out), "-c", str(conf), "-g", "daemon off;"]

    return command


def edge_nginx(
    directory: Path,
    upstreams: list[int],
    out: Path,
    adjust: Callable[[Path], None] | None = None,
) -> Callable[[int], list[str]]:
    """The shipped nginx config (deploy/nginx), rendered into `directory` as make
    serve and the tests render it, in front of gunicorns on `upstreams`, serving
    out/media and out/static; `adjust(directory)` may then edit it."""

    def command(port: int) -> list[str]:
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
        if adjust:
            adjust(directory)
        return ["nginx", "-c", str(directory / "nginx.conf"), "-e", "stderr"]

    return command


def nginx_version() -> str:
    """`nginx -v`, for the report: nginx is every comparison's yardstick."""
    return subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=True
    ).stderr.strip()


# --- measuring ----------------------------------------------------------------


@dataclass(frozen=True)
class Wrk:
    """One wrk run's figures, as `wrk` parses them from its --latency output."""

    requests: int
    requests_per_second: float
    megabytes_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    # Written, answered or not; only known with bench/listeners.lua.
    sent: int | None = None


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
    header = ["-H", f"Range: {range_header}"] if range_header else []
    script = []
    if listeners:
        script = [BENCH / "listeners.lua", f"bench-{os.getpid()}-{next(_wrk_runs)}"]
        script.append(listeners)
    command = wrk_command(url, connections, seconds, *script, options=header)
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    return wrk_figures(output.stdout)


def wrk_command(
    url: str,
    connections: int,
    seconds: int,
    script: Path | None = None,
    *script_args: str,
    options: Sequence[str] = (),
) -> list[str]:
    """A wrk command line, with a Lua `script` and its arguments if given."""
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}"]
    command += [f"-d{seconds}s", "--latency", "--timeout", "10s", *options]
    if script:
        return [*command, "-s", str(script), url, "--", *script_args]
    return [*command, url]


def wrk_figures(output: str) -> Wrk:
    """A wrk run's figures from what it printed with --latency."""
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


def split_url(url: str) -> tuple[str, int, str]:
    """host, port, path: what a raw socket client needs."""
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    return match[1], int(match[2]), match[3]


def ttfb_ms(url: str, samples: int) -> float:
    """Median time to first byte over fresh connections, as curl measures it."""
    times = []
    for _ in range(samples):
        output = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(float(output) * 1000)
    return statistics.median(times)


def curl_together(commands: list[list[str]]) -> int:
    """Run curl commands all at once; how many failed."""
    curls = [subprocess.Popen(command) for command in commands]
    return sum(curl.wait() != 0 for curl in curls)


def worker_pids(master: int) -> list[int]:
    """A master's live children (gunicorn's or nginx's workers), from /proc."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text()
    return [int(pid) for pid in children.split()]


def rss_mb(pid: int) -> float:
    """A process's resident memory, 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # a worker recycled by max_requests
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1]) / 1024


def peak_rss_mb(pids: Callable[[], list[int]], stop: threading.Event) -> float:
    """The largest resident memory of any of `pids()`, sampled every 50 ms until
    `stop`: run it in a thread beside the load."""
    peak = 0.0
    while not stop.is_set():
        peak = max([peak, *(rss_mb(pid) for pid in pids())])
        time.sleep(0.05)
    return peak


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a process (and of its exited children) from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = sum(map(int, fields[11:15] if children else fields[11:13]))
    return ticks / os.sysconf("SC_CLK_TCK")


@functools.cache
def _backends_reader():
    """One connection for the whole run, to another database than the servers':
    it is never among the backends it counts, and none comes and goes for it."""
    return _admin_connection()


@functools.cache
def _database_server() -> int:
    """The PostgreSQL server's main process (the postmaster): the parent of a
    backend, this run's reading connection's own."""
    (backend,) = _backends_reader().execute("SELECT pg_backend_pid()").fetchone()
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


@dataclass(frozen=True)
class Meter:
    """What counts as one setup's CPU time. Throughput depends on what else the
    machine runs; the servers' CPU time per request much less, so it is reported
    beside it. "app": each gunicorn master, its live and exited workers, and with
    a `database` the PostgreSQL server's processes ("app backend": its backends,
    live and exited, and the writers and autovacuum its writes keep busy; on a
    server the benchmark has to itself); "nginx": each nginx master's workers."""

    gunicorns: tuple[int, ...] = ()
    nginxes: tuple[int, ...] = ()
    database: str = ""

    def read(self) -> dict[str, float]:
        """CPU seconds used so far, by process (named by part and pid)."""
        used = {}
        for master in self.gunicorns:
            workers = sum(map(cpu_seconds, worker_pids(master)))
            used[f"app {master}"] = cpu_seconds(master, children=True) + workers
        if self.database:
            # A backend ends with its connection (a gunicorn worker recycled):
            # its time moves to the server's main process, which waited for it.
            # One sum, so that it counts once either way.
            server = _database_server()
            backends = sum(map(cpu_seconds, worker_pids(server)))
            used["app backend"] = cpu_seconds(server, children=True) + backends
        for master in self.nginxes:
            used[f"nginx {master}"] = sum(map(cpu_seconds, worker_pids(master)))
        return used


def transactions(database: str) -> int:
    """Transactions committed in `database` so far, as PostgreSQL counts them (each
    statement outside a transaction is one). A backend reports its own once idle
    for a while (10 s on PostgreSQL 15): wait that long after a load first."""
    reader = _backends_reader()
    reader.execute("SELECT pg_stat_clear_snapshot()")
    return reader.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
        [database.rsplit("/", 1)[1]],
    ).fetchone()[0]


def cpu_ms(
    before: dict[str, float], after: dict[str, float], requests: int, part: str = ""
) -> float:
    """CPU milliseconds per request that a part used between two readings."""
    seconds = sum(
        used - before.get(name, 0.0)
        for name, used in after.items()
        if name.startswith(part)
    )
    return seconds * 1000 / max(requests, 1)


@dataclass(frozen=True)
class Metered:
    """A wrk run with the CPU per request its servers used."""

    run: Wrk
    app_cpu_ms: float
    nginx_cpu_ms: float = 0.0


def metered_wrk(meter: Meter, url: str, connections: int, seconds: int, **options):
    """wrk (with `options`, as `wrk` takes them) between two readings of `meter`."""
    before = meter.read()
    run = wrk(url, connections, seconds, **options)
    after = meter.read()
    return Metered(
        run,
        cpu_ms(before, after, run.requests, "app"),
        cpu_ms(before, after, run.requests, "nginx"),
    )


def best_of(
    runs: dict[str, Callable[[], T]], rate: Callable[[T], float], rounds: int
) -> dict[str, T]:
    """Each of `runs` in turn, `rounds` times over; the best result of each by
    `rate`. Taking turns spreads what other work on the machine adds or takes away
    over all the servers compared, so it weighs on each about alike."""
    best: dict[str, T] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            result = run()
            if name not in best or rate(result) > rate(best[name]):
                best[name] = result
    return best


# --- reporting ------------------------------------------------------------------


def command_line(
    doc: str,
    results: Path,
    scratch: Path,
    more: Callable[[argparse.ArgumentParser], None] | None = None,
    wrk_runs: bool = True,
) -> argparse.Namespace:
    """A benchmark's command line: --out, --quick, with `wrk_runs` --seconds (and
    args.rounds), and what `more` adds. --quick is a check that the script works
    from end to end: its figures mean nothing, so they go to scratch/quick.md
    unless --out says otherwise, never over the published ones."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if wrk_runs:
        parser.add_argument(
            "--seconds", type=int, help="length of each wrk run (8; --quick: 1)"
        )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the shortest run: a check that it works, not figures to publish",
    )
    parser.add_argument(
        "--out", type=Path, help=f"results file ({results.relative_to(ROOT)})"
    )
    if more:
        more(parser)
    args = parser.parse_args()
    if args.out is None:
        args.out = scratch / "quick.md" if args.quick else results
    if wrk_runs:
        args.seconds = args.seconds or (1 if args.quick else 8)
        args.rounds = 1 if args.quick else ROUNDS
    return args


def verdict(met: bool) -> str:
    """A goal's verdict; a missed one in bold, so it stands out in the table."""
    return "met" if met else "**missed**"


def table(header: list[str], rows: list[Row]) -> str:
    """A Markdown table, as the results files hold them."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def load_average() -> str:
    """The 1, 5 and 15 min load: how busy the shared machine was."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def environment(
    results: Path,
    clips: str,
    load_generator: str,
    more: dict[str, str] | None = None,
    reference: str | None = None,
) -> dict[str, str]:
    """The machine and the code measured (and the `reference` revision it is held
    against, if any), for a report's head: a figure means little without the load
    and the revision it was taken under. Changes to `results` are the run's own."""
    try:
        ours = [f":!{results.resolve().relative_to(ROOT)}"]
    except ValueError:  # written outside the checkout
        ours = []
    changed = git("status", "--porcelain", "--untracked-files=no", *ours)
    code = git("rev-parse", "--short", "HEAD")
    code += " with uncommitted changes" if changed else ""
    about = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "code (after)" if reference else "code": code,
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "load average (1, 5, 15 min) at start": load_average(),
        "Clips": clips,
        "nginx": nginx_version().replace("nginx version: ", "")
        + ", sendfile on, worker_processes auto",
        "load generator": load_generator,
        **(more or {}),
    }
    if reference:
        about["code before (--before)"] = revision(reference)
    return about


def cpu_model() -> str:
    """The CPU's name, for the report's head."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    return model[1] if model else platform.machine()


def publish(path: Path, *parts: str, about: dict[str, str] | None = None) -> None:
    """Print a report (the run's description first, with the load at its end,
    when there is one) and put it in the results file at `path`."""
    if about is not None:
        about = about | {"load average at end": load_average()}
        parts = ("\n".join(f"- {key}: {value}" for key, value in about.items()), *parts)
    report = "\n\n".join(parts)
    print(report)
    write_report(path, report)
    print(f"bench: wrote {path}")


def write_report(path: Path, report: str) -> None:
    """Replace the generated block of a results file, keeping the notes around it."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{block}\n"
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        text = f"{text.rstrip()}\n\n{block}\n"
    else:
        text = text[:start] + block + text[end + len(END) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
