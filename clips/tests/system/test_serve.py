"""`make serve`: production's topology on one machine, started as a user starts it.

nginx (the shipped deploy/nginx config) in front of gunicorn with the stream
offload, Redis, the ingest worker and beat, under supervisord: a process that dies
is started again, and SIGTERM to the process group stops every process.
Two of them with one DATABASE_URL and REDIS_URL are two replicas of one service.
"""

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from clips.tests.system.servers import Served, database_of_its_own, make_serve

STREAM = "/api/v1/clips/1/stream"
SAMPLE = Path("samples") / "ambient.mp3"
# Two gunicorn workers: a master with children to stop, at little cost.
SMALL = {"GUNICORN_WORKERS": "2", "CLIPS_THROTTLE_STREAM": ""}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A database of the replicas' own, on the suite's kind of database."""
    with database_of_its_own(tmp_path_factory.mktemp("serve-db")) as url:
        yield url


@pytest.fixture(scope="module")
def machine(tmp_path_factory) -> Path:
    """One machine's media, static files and run files, shared by its replicas."""
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def replica(machine, database_url) -> Iterator[Served]:
    """make serve with no REDIS_URL: it starts a redis-server of its own."""
    with make_serve(machine, extra_env={"DATABASE_URL": database_url, **SMALL}) as run:
        yield run


def descendants(pid: int) -> dict[int, str]:
    """Every live process under `pid`, by pid, with its command name."""
    children: dict[int, list[int]] = {}
    names = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.split(")")
        state, parent = fields[-1].split()[:2]
        if state != "Z":
            names[int(stat.parent.name)] = name
            children.setdefault(int(parent), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = names[child]
            todo.append(child)
    return found


def alive(pids) -> list[int]:
    def running(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    return [pid for pid in pids if running(pid)]


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((parts.hostname, parts.port)) == 0


def redis_ping(url: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as redis:
        redis.sendall(b"PING\r\n")
        return redis.recv(64)


def test_the_page_and_the_api_answer_through_nginx(replica):
    page = requests.get(f"{replica.url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{replica.url}/api/v1/clips", timeout=10).json()["count"] == 6


def test_a_stream_is_sent_by_nginx_from_the_media_files(replica, machine):
    whole = requests.get(replica.url + STREAM, timeout=30)
    part = requests.get(
        replica.url + STREAM, headers={"Range": "bytes=0-99"}, timeout=30
    )
    audio = (machine / "media" / SAMPLE).read_bytes()
    assert (whole.status_code, whole.content) == (200, audio)
    assert (part.status_code, part.content) == (206, audio[:100])
    log = replica.access_log.read_text()
    assert f'"GET /_protected/audio-whole/{SAMPLE}" 200' in log
    assert f'"GET /_protected/audio/{SAMPLE}" 206' in log


def scraped_soon(url: str, wanted: str, *, then=None) -> str:
    """/metrics of a helper process once it shows `wanted`, calling `then` between.

    The exporter listens once nginx's stub_status answers; mtail compiles its
    program first and finds the log about a second later.
    """
    deadline, text = time.monotonic() + 30, ""
    while wanted not in text:
        assert time.monotonic() < deadline, text
        if then:
            then()
        time.sleep(0.5)
        with contextlib.suppress(requests.ConnectionError):
            text = requests.get(f"{url}/metrics", timeout=10).text
    return text


def test_nginx_figures_are_exported_for_prometheus(replica):
    scraped_soon(replica.exporter_url, "\nnginx_up 1")
    scraped_soon(
        replica.mtail_url,
        "clips_edge_requests_total",
        then=lambda: requests.get(f"{replica.url}/api/v1/clips", timeout=10),
    )


def test_the_ingest_worker_serves_its_own_metrics(replica):
    scraped_soon(replica.worker_url, 'clips_ingest_total{outcome="ready"}')


def test_metrics_are_served_by_gunicorn_and_not_through_nginx(replica):
    assert requests.get(f"{replica.url}/metrics", timeout=10).status_code == 404
    metrics = requests.get(f"{replica.app_url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "clips_streams_total" in metrics.text


def test_static_files_are_collected_and_served_by_nginx(replica):
    css = requests.get(f"{replica.url}/static/admin/css/base.css", timeout=10)
    assert css.status_code == 200
    # nginx's 7 days (deploy/nginx), not whitenoise's 60 s.
    assert css.headers["Cache-Control"] == "max-age=604800, public"
    assert "GET /static/" not in replica.log_text()  # gunicorn's access log


def test_settings_are_productions_with_a_generated_secret_key(replica, machine):
    missing = requests.get(f"{replica.url}/no-such-page", timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text  # DEBUG is off
    key = machine / "serve" / "secret_key"
    assert len(key.read_text().strip()) >= 50
    assert key.stat().st_mode & 0o077 == 0


def test_without_redis_url_it_runs_a_redis_of_its_own(replica):
    assert redis_ping(replica.redis_url) == b"+PONG\r\n"
    assert "redis-server" in descendants(replica.process.pid).values()


def test_a_second_replica_shares_the_database_and_redis(replica, machine, database_url):
    shared = {"DATABASE_URL": database_url, "REDIS_URL": replica.redis_url}
    with make_serve(machine, extra_env={**shared, **SMALL}) as second:
        assert second.redis_url == replica.redis_url
        assert "redis-server" not in descendants(second.process.pid).values()
        stats = f"{second.url}/api/v1/clips/2/stats"
        before = requests.get(stats, timeout=10).json()["play_count"]
        listen = requests.get(f"{replica.url}/api/v1/clips/2/stream", timeout=30)
        assert listen.status_code == 200
        assert requests.get(stats, timeout=10).json()["play_count"] == before + 1


def test_sigterm_to_its_process_group_stops_every_process(machine, database_url):
    with make_serve(
        machine, extra_env={"DATABASE_URL": database_url, **SMALL}
    ) as served:
        processes = descendants(served.process.pid)
        urls = [served.url, served.app_url, served.redis_url]
        assert {"nginx", "gunicorn", "redis-server"} <= set(processes.values())
        assert all(listening(url) for url in urls)
    # The helper sent SIGTERM to the group and make has exited.
    assert served.process.returncode is not None
    assert alive(processes) == []
    assert not any(listening(url) for url in urls)


def ingest_workers(pid: int) -> set[int]:
    """The Celery worker's processes under `pid`: its parent and its pool."""
    return {
        child
        for child in descendants(pid)
        if b"worker" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
    }


def test_a_killed_worker_is_started_again_while_the_edge_serves_on(replica):
    killed = ingest_workers(replica.process.pid)
    assert killed
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    answers, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        answers.append(requests.get(f"{replica.url}/api/v1/clips", timeout=10))
        back = ingest_workers(replica.process.pid) - set(killed)
        if back and listening(replica.worker_url):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no worker again in 60 s:\n{replica.log_text()[-3000:]}")
    assert {answer.status_code for answer in answers} == {200}
    metrics = requests.get(f"{replica.worker_url}/metrics", timeout=10)
    assert "clips_ingest_total" in metrics.text
