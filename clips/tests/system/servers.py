"""Real processes for tests: the app under gunicorn, nginx, Prometheus, what exports
nginx's figures to it (mtail, prometheus-nginx-exporter), Redis, a Celery worker, an
S3 server (moto) and make serve.

Each listens on a free loopback port in 18000-18999 and is stopped on exit; Redis
is the machine's own (clips.tests.tools.redis_env), with a key prefix for each user,
except for a test that stops it: that one starts its own (redis_server).
The tests in this directory are marked `system` (clips/tests/conftest.py).
"""

import fcntl
import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import boto3
import psycopg
import pytest
import redis
import requests
from django.db import connection
from requests.adapters import HTTPAdapter

from clips.tests.tools import BASE_DIR, free_port, require_tool, tool_missing

MONITORING = BASE_DIR / "monitoring"
NGINX = BASE_DIR / "deploy" / "nginx"
# The executables of this test run's venv: requirements-dev.txt.
DEV_BIN = Path(sys.executable).parent
RUNTIME_LOCK = BASE_DIR / "requirements.txt"


def nginx_render() -> ModuleType:
    """deploy/nginx/render.py, which is a script beside its templates, as a module."""
    spec = importlib.util.spec_from_file_location("render", NGINX / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    return render


# The make running this suite, if any: a make started by a test is its own.
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")


def runtime_venv() -> Path:
    """A venv of the runtime lock alone, as the image installs it; returns its bin/.

    Built by the Makefile's own recipe (`make .venv-runtime/bin/.installed` with
    RUNTIME_VENV elsewhere), once per lock and Python: kept under
    ~/.cache/clips/ by the lock's hash, so later runs reuse it. A file lock makes
    parallel test runs wait for one build.
    """
    key = hashlib.sha256(RUNTIME_LOCK.read_bytes() + sys.version.encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clips"
    venv = cache / f"runtime-{key.hexdigest()[:16]}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # -o: the lock's content is the key, so its mtime (a fresh clone's) is not.
        built = subprocess.run(
            [
                *("make", "--no-print-directory", "-o", RUNTIME_LOCK.name),
                *(f"PYTHON={sys.executable}", f"RUNTIME_VENV={venv}"),
                f"{venv}/bin/.installed",
            ],
            cwd=BASE_DIR,
            env={k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES},
            capture_output=True,
            text=True,
        )
    if built.returncode:
        pytest.fail(f"the runtime lock does not install:\n{built.stdout}{built.stderr}")
    return venv / "bin"


# The tests' listeners all connect from 127.0.0.1, each told apart by a User-Agent of
# its own: a test that counts every such listen turns the cap per address off.
UNCAPPED = {"CLIPS_PLAYS_PER_ADDRESS": "0"}

# loaddata leaves the samples as their rows say (ready, no renditions) instead of
# ingesting all six (some 9 s of CPU per site); a test ingests what it needs.
NO_SAMPLES_INGEST = {"CLIPS_SAMPLES_INGEST": "0"}


def site_env(workdir: Path) -> dict[str, str]:
    """Production settings on a SQLite file and media of its own under workdir.

    No REDIS_URL from the environment: a test that wants Redis passes redis_env()'s
    in extra_env.
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_URL", "CACHE_KEY_PREFIX")
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "clips_project.settings",
        "DEBUG": "0",
        "SECRET_KEY": "monitoring-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
        **NO_SAMPLES_INGEST,
    }


def shared_database_url() -> str:
    """This test's PostgreSQL database, for a server process to work on it too."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}"
        f"/{db['NAME']}"
    )


def site_create(
    workdir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    bin_dir: Path = DEV_BIN,
) -> Path:
    """Migrate and load the six sample clips (ids 1-6) into workdir; return it.

    extra_env overrides site_env(workdir): another DATABASE_URL, s3_server()'s bucket.
    bin_dir: the venv's whose python runs manage.py.
    """
    for command in (["migrate", "--noinput"], ["loaddata", "sample_clips"]):
        subprocess.run(
            [bin_dir / "python", "manage.py", *command, "-v0"],
            cwd=BASE_DIR,
            env=site_env(workdir) | (extra_env or {}),
            check=True,
            capture_output=True,
        )
    return workdir


def clip_ingested(
    app_url: str, clip: dict, *, headers: dict[str, str], within: float = 60
) -> dict:
    """The clip's representation once it is no longer pending (a worker ingested
    it); the test fails if it still is after `within` seconds."""
    deadline = time.monotonic() + within
    while clip["status"] == "pending":
        if time.monotonic() > deadline:
            pytest.fail(f"not ingested in {within} s: {clip}")
        time.sleep(0.2)
        clip = requests.get(
            f"{app_url}/api/v1/clips/{clip['id']}", headers=headers, timeout=10
        ).json()
    return clip


def curator_token(workdir: Path, *, extra_env: dict[str, str] | None = None) -> str:
    """The API token of a new curator of the site in workdir (manage.py create_curator).

    extra_env overrides site_env(workdir), e.g. another DATABASE_URL.
    """
    made = subprocess.run(
        [sys.executable, "manage.py", "create_curator", f"curator-{uuid.uuid4()}"],
        cwd=BASE_DIR,
        env=site_env(workdir) | (extra_env or {}),
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip()


@contextmanager
def database_of_its_own(directory: Path) -> Iterator[str]:
    """A DATABASE_URL of a new, empty database of the suite's kind, dropped on exit.

    On PostgreSQL a database beside the test database; on SQLite a file in directory.
    """
    database = connection.settings_dict
    if not database["ENGINE"].endswith("postgresql"):
        yield f"sqlite:///{directory / 'own.sqlite3'}"
        return
    server = {
        "host": database["HOST"],
        "port": database["PORT"],
        "user": database["USER"],
        "password": database["PASSWORD"],
    }
    name = f"clips_{directory.name.replace('-', '_')}_{os.getpid()}".lower()
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            f"postgres://{database['USER']}:{database['PASSWORD']}@"
            f"{database['HOST']}:{database['PORT']}/{name}"
        )
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@dataclass
class Process:
    url: str
    process: subprocess.Popen
    log: Path  # stdout
    errors: Path  # stderr: for gunicorn, its error log and the app's logging

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") + self.error_text()

    def error_text(self) -> str:
        return self.errors.read_text(errors="replace")


class FromAddress(HTTPAdapter):
    """A requests adapter whose connections come from one source address in
    127.0.0.0/8 (all loopback), as a client of its own on the internet would."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@contextmanager
def _running(
    command: list[str],
    *,
    url: str,
    ready_path: str,
    env: dict[str, str],
    log: Path,
    ready_within: float = 30,
    group: bool = False,
) -> Iterator[Process]:
    """Start `command`, wait until url + ready_path answers 200, stop it on exit.

    group: in a process group of its own, stopped by SIGTERM to the whole group,
    as a terminal's Ctrl-C or a supervisor would.
    """
    errors = log.with_suffix(".err")
    with log.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=group,
        )
    running = Process(url=url, process=process, log=log, errors=errors)

    def signal_it(number: int) -> None:
        if group:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, number)
        else:
            process.send_signal(number)

    try:
        deadline = time.monotonic() + ready_within
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited:\n{running.log_text()}")
            try:
                if requests.get(url + ready_path, timeout=2).status_code == 200:
                    break
            # Not listening yet, or listening while its workers still load the app.
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{command[0]} not ready in {ready_within} s:\n{running.log_text()}"
                )
            time.sleep(0.1)
        yield running
    finally:
        signal_it(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            process.wait()


@contextmanager
def gunicorn(
    workdir: Path,
    *,
    workers: int,
    metrics_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    group: bool = False,
    bin_dir: Path = DEV_BIN,
) -> Iterator[Process]:
    """The app as in production: clips_project/gunicorn.py, several workers.

    extra_env overrides site_env(workdir), e.g. another DATABASE_URL. group: the
    master and its workers in a process group of their own, which a test may kill.
    bin_dir: the venv's whose gunicorn runs, e.g. runtime_venv()'s.
    """
    port = free_port()
    env = {
        **site_env(workdir),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        **({"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)} if metrics_dir else {}),
        **(extra_env or {}),
    }
    command = [bin_dir / "gunicorn", "-c", "clips_project/gunicorn.py"]
    with _running(
        [*map(str, command), "clips_project.wsgi"],
        url=f"http://127.0.0.1:{port}",
        ready_path="/healthz",
        env=env,
        log=workdir / f"gunicorn-{port}.log",
        group=group,
    ) as app:
        # The master opens its control socket once it has spawned the workers, and
        # a preloaded app's worker answers before that: wait for the master's last
        # start-up line, so that none falls among what a test reads of the log.
        _wait_until_ready(
            app,
            lambda: any(line in app.error_text() for line in _GUNICORN_STARTED),
            within=30,
        )
        yield app


_GUNICORN_STARTED = ("Control socket listening at", "Failed to start control socket")


@contextmanager
def _listening(
    workdir: Path, command: Callable[[int], list[str]], *, ready_path: str
) -> Iterator[Process]:
    """A Debian tool serving HTTP on a free port: command(port) runs it."""
    port = free_port()
    arguments = command(port)
    with _running(
        arguments,
        url=f"http://127.0.0.1:{port}",
        ready_path=ready_path,
        env=dict(os.environ),
        log=workdir / f"{Path(arguments[0]).name}-{port}.log",
    ) as server:
        yield server


def prometheus(workdir: Path, config: Path) -> AbstractContextManager[Process]:
    return _listening(
        workdir,
        lambda port: [
            require_tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        ready_path="/-/ready",
    )


@contextmanager
def nginx(
    workdir: Path, *, upstreams: Sequence[str], media_root: Path, static_root: Path
) -> Iterator[Process]:
    """The shipped deploy/nginx config, rendered for a free port, before `upstreams`.

    upstreams are the gunicorns' host:port, one per replica; media_root and
    static_root as the app has them, since nginx sends those files itself.
    """
    binary = require_tool("nginx", package="nginx")
    port = free_port()
    directory = workdir / f"nginx-{port}"
    render = [sys.executable, str(NGINX / "render.py")]
    subprocess.run(
        [
            *render,
            str(directory),
            f"--listen=127.0.0.1:{port}",
            *(f"--upstream={upstream}" for upstream in upstreams),
            f"--media-root={media_root}",
            f"--static-root={static_root}",
            f"--access-log={directory / 'access.log'}",
        ],
        check=True,
        capture_output=True,
    )
    with _running(
        [binary, "-c", str(directory / "nginx.conf"), "-e", "stderr"],
        url=f"http://127.0.0.1:{port}",
        ready_path="/healthz",
        env=dict(os.environ),
        log=directory / "nginx.log",
    ) as server:
        yield server


def _wait_until_ready(server: Process, ready: Callable[[], bool], *, within: float):
    """Until ready() says so; fails the test if the server exits or takes longer."""
    deadline = time.monotonic() + within
    while not ready():
        if server.process.poll() is not None or time.monotonic() > deadline:
            name = Path(server.process.args[0]).name
            pytest.fail(f"{name} not ready in {within} s:\n{server.log_text()}")
        time.sleep(0.1)


@contextmanager
def redis_server(workdir: Path, *, port: int | None = None) -> Iterator[Process]:
    """A redis-server of the test's own, as make serve runs it (no persistence); its
    url is its REDIS_URL. The test may stop or kill it early (process.kill()): the
    machine's Redis, which other runs share, is never stopped. Started again on the
    same port, it is the same REDIS_URL, empty."""
    binary = require_tool("redis-server", package="redis-server")
    port = port or free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = workdir / f"redis-{port}.log"
    errors = log.with_suffix(".err")
    with log.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            [
                *(binary, "--bind", "127.0.0.1", "--port", str(port)),
                *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
            ],
            stdout=out,
            stderr=err,
        )
    server = Process(url=url, process=process, log=log, errors=errors)
    client = redis.Redis.from_url(url, socket_connect_timeout=1)

    def answers() -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        _wait_until_ready(server, answers, within=30)
        yield server
    finally:
        client.close()
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


# moto's server mode: a real S3 API over HTTP, on loopback, in memory.
S3_REGION = "us-east-1"


@contextmanager
def s3_server(workdir: Path) -> Iterator[dict[str, str]]:
    """An S3 server with one empty bucket; yields the app's settings for it.

    The keys are moto's (it accepts any); the bucket is dropped with the server.
    """
    binary = shutil.which("moto_server", path=str(DEV_BIN))
    if binary is None:
        tool_missing("needs moto_server (pip: moto[server], requirements-dev.txt)")
    with _listening(
        workdir,
        lambda port: [binary, "-H", "127.0.0.1", "-p", str(port)],
        ready_path="/moto-api/",
    ) as server:
        env = {
            "AWS_S3_ENDPOINT_URL": server.url,
            "AWS_STORAGE_BUCKET_NAME": f"clips-{secrets.token_hex(4)}",
            "AWS_ACCESS_KEY_ID": "clips-test",
            "AWS_SECRET_ACCESS_KEY": "clips-test-secret",
            "AWS_S3_REGION_NAME": S3_REGION,
        }
        response = requests.put(
            f"{server.url}/{env['AWS_STORAGE_BUCKET_NAME']}", timeout=10
        )
        response.raise_for_status()
        yield env


def s3_client(env: dict[str, str]):
    """A boto3 client of s3_server()'s, to look at or change the bucket directly."""
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_S3_ENDPOINT_URL"],
        region_name=env["AWS_S3_REGION_NAME"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@contextmanager
def _celery(
    workdir: Path,
    arguments: list[str],
    *,
    ready_text: bytes,
    env: dict[str, str],
    label: str,
    ready_within: float = 60,
    bin_dir: Path = DEV_BIN,
) -> Iterator[Process]:
    """`celery -A clips_project <arguments>` in a process group of its own.

    Ready once its log (stderr) shows ready_text; stopped by SIGTERM to the group
    (a warm shutdown), killed if stuck. A test may kill the group itself.
    """
    log = workdir / f"{label}.log"
    errors = log.with_suffix(".err")  # Celery logs to stderr
    with log.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "clips_project", *arguments],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    url = env.get("WORKER_METRICS_BIND", "")
    running = Process(
        url=url and f"http://{url}", process=process, log=log, errors=errors
    )
    try:
        _wait_until_ready(
            running, lambda: ready_text in errors.read_bytes(), within=ready_within
        )
        yield running
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def celery_worker(
    workdir: Path,
    *,
    extra_env: dict[str, str],
    ready_within: float = 60,
    bin_dir: Path = DEV_BIN,
) -> AbstractContextManager[Process]:
    """The ingest worker as in production (deploy/Procfile), on site_env(workdir).

    extra_env gives its broker: redis_env()'s, whose prefix keeps its queue apart.
    bin_dir: the venv's whose celery runs, e.g. runtime_venv()'s.
    Its url is its own metrics endpoint (WORKER_METRICS_BIND, a free port).
    """
    port = free_port()
    env = {
        **site_env(workdir),
        "WORKER_METRICS_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"celery-{port}-metrics"),
        **extra_env,
    }
    return _celery(
        workdir,
        ["worker", "--loglevel=INFO", "--concurrency=1", "--without-mingle"],
        ready_text=b" ready.",
        env=env,
        label=f"celery-{port}",
        ready_within=ready_within,
        bin_dir=bin_dir,
    )


def celery_beat(
    workdir: Path, *, extra_env: dict[str, str], bin_dir: Path = DEV_BIN
) -> AbstractContextManager[Process]:
    """Celery beat as in production (deploy/Procfile): it sends the outbox check."""
    schedule = workdir / f"beat-{secrets.token_hex(4)}"
    return _celery(
        workdir,
        ["beat", "--loglevel=INFO", f"--schedule={schedule}"],
        ready_text=b"beat: Starting",
        env={**site_env(workdir), **extra_env},
        label=schedule.name,
        bin_dir=bin_dir,
    )


# The stream offload on, no stream rate limit, nginx the one proxy Django trusts.
OFFLOAD_ENV = {
    "CLIPS_THROTTLE_STREAM": "",
    "CLIPS_STREAM_OFFLOAD": "1",
    "NUM_PROXIES": "1",
}


@contextmanager
def edge(
    workdir: Path,
    *,
    workers: int = 1,
    metrics_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[Process, Process]]:
    """(gunicorn, nginx): the app with the offload on, behind the shipped config.

    nginx sends the files of workdir/media and workdir/static; extra_env adds to
    gunicorn's OFFLOAD_ENV.
    """
    (workdir / "static").mkdir(exist_ok=True)
    with (
        gunicorn(
            workdir,
            workers=workers,
            metrics_dir=metrics_dir,
            extra_env=OFFLOAD_ENV | (extra_env or {}),
        ) as app,
        nginx(
            workdir,
            upstreams=[app.url.removeprefix("http://")],
            media_root=workdir / "media",
            static_root=workdir / "static",
        ) as server,
    ):
        yield app, server


def nginx_access_log(server: Process) -> Path:
    """The access log of an nginx() (log_format clips)."""
    return server.log.parent / "access.log"


def nginx_status_uri(server: Process) -> str:
    """Where prometheus-nginx-exporter reads an nginx()'s stub_status."""
    return f"unix:{server.log.parent / 'status.sock'}:/stub_status"


# How production runs mtail too (docker-compose.yml; make serve): the program in
# monitoring/mtail, no `prog` label on its series, its own log on stderr.
MTAIL_PROGRAMS = MONITORING / "mtail"
MTAIL_FLAGS = ["-emit_prog_label=false", "-logtostderr"]


@contextmanager
def mtail(workdir: Path, *, access_log: Path) -> Iterator[Process]:
    """mtail reading an nginx access log with monitoring/mtail/nginx.mtail.

    Ready once it tails the log: mtail starts at the end of the file, and finds
    it up to a second after it answers HTTP.
    """
    command = [
        require_tool("mtail", package="mtail"),
        f"-progs={MTAIL_PROGRAMS}",
        f"-logs={access_log}",
        "-address=127.0.0.1",
        *MTAIL_FLAGS,
    ]
    with _listening(
        workdir, lambda port: [*command, f"-port={port}"], ready_path="/metrics"
    ) as server:
        deadline = time.monotonic() + 30
        while f"Tailing {access_log}" not in server.error_text():
            if time.monotonic() > deadline:
                pytest.fail(f"mtail did not tail {access_log}:\n{server.log_text()}")
            time.sleep(0.1)
        yield server


def nginx_exporter(
    workdir: Path, *, scrape_uri: str
) -> AbstractContextManager[Process]:
    """prometheus-nginx-exporter: nginx's connections, read from its stub_status."""
    binary = require_tool(
        "prometheus-nginx-exporter", package="prometheus-nginx-exporter"
    )
    return _listening(
        workdir,
        lambda port: [
            binary,
            f"-nginx.scrape-uri={scrape_uri}",
            f"-web.listen-address=127.0.0.1:{port}",
        ],
        ready_path="/metrics",
    )


@dataclass
class Served(Process):
    """A running `make serve`, with what it printed about itself."""

    app_url: str  # gunicorn, behind nginx (url)
    redis_url: str
    access_log: Path
    mtail_url: str  # nginx's figures, for Prometheus
    exporter_url: str
    worker_url: str  # the ingest worker's own metrics


def serve_lines(log: Path) -> dict[str, str]:
    """deploy/serve.py's `serve: <label> <value>` lines, by label."""
    lines = log.read_text(errors="replace").splitlines()
    pairs = (line.removeprefix("serve: ") for line in lines if line[:7] == "serve: ")
    return {
        label: value.strip().split(" (")[0]
        for label, value in (pair.split(":", 1) for pair in pairs)
    }


@contextmanager
def make_serve(
    workdir: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[Served]:
    """`make serve` as a user runs it, in a process group of its own.

    From the runtime venv (runtime_venv()), as the Makefile has it.
    On a free port, with media, static files and run files under workdir (so two
    in one workdir share media and SECRET_KEY, as two replicas on one machine do);
    extra_env adds DATABASE_URL, REDIS_URL... Stopped by SIGTERM to its group.
    """
    for tool in ("make", "nginx", "redis-server", "mtail", "prometheus-nginx-exporter"):
        require_tool(tool, package=tool)
    port = free_port()
    venv = runtime_venv().parent
    # Not the test settings (and their key), nor a Redis of the shell (it would
    # start none of its own), nor the make running this suite.
    inherited = (
        *("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "REDIS_URL", "CACHE_KEY_PREFIX"),
        *MAKE_VARIABLES,
    )
    env = {name: value for name, value in os.environ.items() if name not in inherited}
    env |= {
        "PORT": str(port),
        "SERVE_DIR": str(workdir / "serve"),
        "MEDIA_ROOT": str(workdir / "media"),
        "STATIC_ROOT": str(workdir / "static"),
        **NO_SAMPLES_INGEST,
        **(extra_env or {}),
    }
    # -o: the runtime venv is installed already; make must not reinstall it.
    command = ["make", "--no-print-directory", "-o", f"{venv}/bin/.installed"]
    with _running(
        [*command, "serve", f"RUNTIME_VENV={venv}"],
        url=f"http://127.0.0.1:{port}",
        ready_path="/readyz",
        env=env,
        log=workdir / f"serve-{port}.log",
        ready_within=120,  # collectstatic and migrate first
        group=True,
    ) as served:
        printed = serve_lines(served.log)
        yield Served(
            **vars(served),
            app_url=printed["gunicorn"],
            redis_url=printed["REDIS_URL"],
            access_log=Path(printed["access log"]),
            mtail_url=printed["mtail"].removesuffix("/metrics"),
            exporter_url=printed["exporter"].removesuffix("/metrics"),
            worker_url=printed["worker"].removesuffix("/metrics"),
        )
