"""Real processes for tests: the app under gunicorn, and Prometheus.

Each listens on a free loopback port in 18000-18999 and is stopped on exit.
"""

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import requests

BASE_DIR = Path(__file__).resolve().parents[2]
MONITORING = BASE_DIR / "monitoring"
PORTS = range(18000, 19000)


def tool_missing(message: str) -> NoReturn:
    """Skip the test; in CI, where .ci/run installs every tool, fail it."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str, package: str = "prometheus") -> str:
    """Path of a binary from Debian; in CI a missing one fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        tool_missing(f"needs `{name}` (Debian package {package}; .ci/run installs it)")
    return path


def free_port() -> int:
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 18000-18999")


def site_env(workdir: Path) -> dict[str, str]:
    """Production settings on a SQLite file and media of its own under workdir."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "clips_project.settings",
        "DEBUG": "0",
        "SECRET_KEY": "monitoring-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "media"),
    }


def site_create(workdir: Path) -> None:
    """Migrate and load the six sample clips (ids 1-6)."""
    for command in (["migrate", "--noinput"], ["loaddata", "sample_clips"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "-v0"],
            cwd=BASE_DIR,
            env=site_env(workdir),
            check=True,
            capture_output=True,
        )


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


@contextmanager
def _running(
    command: list[str], *, url: str, ready_path: str, env: dict[str, str], log: Path
) -> Iterator[Process]:
    errors = log.with_suffix(".err")
    with log.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=err
        )
    running = Process(url=url, process=process, log=log, errors=errors)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited:\n{running.log_text()}")
            try:
                if requests.get(url + ready_path, timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still busy
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{command[0]} not ready in 30 s:\n{running.log_text()}")
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def gunicorn(
    workdir: Path,
    *,
    workers: int,
    metrics_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Process]:
    """The app as in production: clips_project/gunicorn.py, several workers.

    extra_env overrides site_env(workdir), e.g. another DATABASE_URL.
    """
    port = free_port()
    env = {
        **site_env(workdir),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        **({"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)} if metrics_dir else {}),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "clips_project/gunicorn.py"]
    with _running(
        [*command, "clips_project.wsgi"],
        url=f"http://127.0.0.1:{port}",
        ready_path="/healthz",
        env=env,
        log=workdir / f"gunicorn-{port}.log",
    ) as app:
        yield app


@contextmanager
def prometheus(workdir: Path, config: Path) -> Iterator[Process]:
    port = free_port()
    command = [
        require_tool("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _running(
        command,
        url=f"http://127.0.0.1:{port}",
        ready_path="/-/ready",
        env=dict(os.environ),
        log=workdir / "prometheus.log",
    ) as server:
        yield server


@contextmanager
def nginx(
    workdir: Path, *, upstream: str, media_root: Path, static_root: Path
) -> Iterator[Process]:
    """The shipped deploy/nginx config, rendered for a free port, before `upstream`.

    upstream is gunicorn's host:port; media_root and static_root as the app has
    them, since nginx sends those files itself.
    """
    binary = require_tool("nginx", package="nginx")
    port = free_port()
    directory = workdir / f"nginx-{port}"
    render = [sys.executable, str(BASE_DIR / "deploy" / "nginx" / "render.py")]
    subprocess.run(
        [
            *render,
            str(directory),
            f"--listen=127.0.0.1:{port}",
            f"--upstream={upstream}",
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


@contextmanager
def gunicorn_behind_nginx(
    workdir: Path, *, workers: int, extra_env: dict[str, str] | None = None
) -> Iterator[Process]:
    """The production edge: gunicorn with the stream offload on (NUM_PROXIES=1)
    behind the shipped nginx config, which serves workdir's media and static/."""
    env = {"CLIPS_STREAM_OFFLOAD": "1", "NUM_PROXIES": "1", **(extra_env or {})}
    static_root = workdir / "static"
    static_root.mkdir(exist_ok=True)
    with (
        gunicorn(workdir, workers=workers, extra_env=env) as app,
        nginx(
            workdir,
            upstream=app.url.removeprefix("http://"),
            media_root=Path(env.get("MEDIA_ROOT", workdir / "media")),
            static_root=static_root,
        ) as server,
    ):
        yield server
