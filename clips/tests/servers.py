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

import pytest
import requests
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
MONITORING = BASE_DIR / "monitoring"
PORTS = range(18000, 19000)


def require_tool(name: str) -> str:
    """Path of a monitoring binary; in CI a missing one fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        message = f"needs `{name}` (Debian package prometheus; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
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


def shared_database_url() -> str:
    """This test's PostgreSQL database, for a server process to work on it too."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}"
        f"/{db['NAME']}"
    )


def site_create(workdir: Path) -> None:
    """Migrate and load the six sample clips (ids 1-6)."""
    for command in (["migrate", "--noinput"], ["load_samples"]):
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
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def _running(
    command: list[str], *, url: str, ready_path: str, env: dict[str, str], log: Path
) -> Iterator[Process]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    running = Process(url=url, process=process, log=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited:\n{running.log_text()}")
            try:
                if requests.get(url + ready_path, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
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
        ready_path="/metrics",
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
