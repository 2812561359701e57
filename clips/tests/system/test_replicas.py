"""Two app replicas behind one nginx upstream, sharing only PostgreSQL, Redis and
the storage: what one replica writes the other serves, plays and rate
limits are counted once for both, a replica killed mid-run costs no play and no
client an error, and Prometheus scrapes each replica as a target of its own while
the dashboard sums them.

Each replica is a gunicorn of its own (its own process group and port) with the
production settings and the stream offload on; nginx is the shipped config with
both in its upstream. They share this session's PostgreSQL test database
(shared_database_url), a Redis key prefix of their own and one storage: the
`storage` fixture is the one place it is chosen. Listeners connect from
addresses of their own (127.0.0.0/8 is all loopback), as on the internet, so the
stream rate limit, which is per address, stays small and real.
"""

import itertools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from clips.tests.audio import tone
from clips.tests.system.servers import (
    OFFLOAD_ENV,
    FromAddress,
    Process,
    celery_worker,
    curator_token,
    gunicorn,
    nginx,
    prometheus,
    s3_server,
    shared_database_url,
    site_create,
)
from clips.tests.system.test_gunicorn_metrics import scraped_plays
from clips.tests.system.test_monitoring_e2e import (
    Prometheus,
    panel_queries,
    scrape_config,
)
from clips.tests.tools import redis_env

# django_db: the replicas work on the test database, so pytest-django must make
# it (this process only reads, through the API).
pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REPLICAS = 2
LISTENERS = 200
# CLIPS_THROTTLE_STREAM of every replica: requests per address and minute.
STREAM_LIMIT = 10
# CLIPS_PLAYS_PER_ADDRESS of every replica: listeners counted per address and clip.
PLAYS_PER_ADDRESS = 5
# A listener's first request (a listen) and a second one at byte 0 (a player
# reopening), which must count nothing more. Their ranges differ, so nginx repeats
# neither (it repeats only the same request): both reach a replica.
LISTEN = {"Range": "bytes=0-"}
REOPEN = {"Range": "bytes=0-999999999"}
# Source addresses, one per listener, never two alike in this module (their rate
# limit windows last a minute).
ADDRESSES = (f"127.42.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@dataclass
class Cluster:
    apps: list[Process]  # the replicas' gunicorns, reached directly
    edge: Process  # nginx before all of them


def listen(url: str, address: str) -> list[int]:
    """A listen and a reopen at byte 0 from `address`: their statuses."""
    with requests.Session() as session:
        session.mount("http://", FromAddress(address))
        session.headers["User-Agent"] = f"Player/{uuid.uuid4()}"
        return [
            session.get(url, headers=headers, timeout=60).status_code
            for headers in (LISTEN, REOPEN)
        ]


def listen_concurrently(
    url: str, count: int, on_done=None, address: str | None = None
) -> list[int]:
    """`count` listeners at once (32 connections at a time), each from an address
    of their own or all from `address`; every status."""
    addresses = [address or next(ADDRESSES) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(listen, url, address) for address in addresses]
        if on_done:
            on_done(futures)
        return [status for future in futures for status in future.result()]


def play_count(app: Process, clip_id: int) -> int:
    response = requests.get(f"{app.url}/api/v1/clips/{clip_id}/stats", timeout=30)
    response.raise_for_status()
    return response.json()["play_count"]


def streams_served(app: Process, clip_id: int) -> int:
    """Stream GETs in a replica's gunicorn access log."""
    return app.log.read_text().count(f'"GET /api/v1/clips/{clip_id}/stream ')


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("replicas")


@pytest.fixture(scope="module")
def storage(workdir) -> Iterator[dict[str, str]]:
    """Where every replica keeps and reads the audio: one bucket of an S3 server
    (moto's), as replicas on several machines would; no disk is shared."""
    with s3_server(workdir) as bucket:
        yield bucket


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker, workdir, storage) -> Iterator[dict]:
    """Every replica's environment: the session's test database, with the six
    sample clips, Redis, the storage. The database is emptied afterwards, as
    transactional_db leaves it for the tests that follow."""
    with redis_env() as redis:
        env = {
            **OFFLOAD_ENV,
            "CLIPS_THROTTLE_STREAM": f"{STREAM_LIMIT}/min",
            "CLIPS_PLAYS_PER_ADDRESS": str(PLAYS_PER_ADDRESS),
            "DATABASE_URL": shared_database_url(),
            **redis,
            **storage,
        }
        site_create(workdir, extra_env=env)
        try:
            yield env
        finally:
            with django_db_blocker.unblock():
                call_command("flush", interactive=False, verbosity=0)


@contextmanager
def replicas(workdir: Path, env: dict[str, str]) -> Iterator[Cluster]:
    """REPLICAS gunicorns and the shipped nginx config with all of them upstream.

    Each keeps its metrics and control socket in workdir, so that one killed
    leaves nothing behind elsewhere.
    """
    (workdir / "static").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        apps = [
            stack.enter_context(
                gunicorn(
                    workdir,
                    workers=2,
                    metrics_dir=workdir / f"metrics-{n}",
                    extra_env=env
                    | {
                        "GUNICORN_CONTROL_SOCKET": str(workdir / f"gunicorn-{n}.ctl"),
                        # A disk of its own, as on another machine: nothing there.
                        "MEDIA_ROOT": str(workdir / f"media-{n}"),
                    },
                    group=True,
                )
            )
            for n in range(REPLICAS)
        ]
        edge = stack.enter_context(
            nginx(
                workdir,
                upstreams=[app.url.removeprefix("http://") for app in apps],
                media_root=workdir / "media",  # unused: the audio is in the bucket
                static_root=workdir / "static",
            )
        )
        yield Cluster(apps=apps, edge=edge)


@pytest.fixture(scope="module")
def cluster(workdir, shared) -> Iterator[Cluster]:
    with replicas(workdir, shared) as running:
        yield running


def wait_until_ready(app: Process, clip_id: int, token: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        clip = requests.get(
            f"{app.url}/api/v1/clips/{clip_id}",
            headers={"Authorization": f"Token {token}"},
            timeout=10,
        ).json()
        if clip["status"] == "ready":
            return
        assert clip["status"] == "pending", clip
        time.sleep(0.5)
    pytest.fail(f"clip {clip_id} not ingested in 90 s")


def test_a_clip_uploaded_through_one_replica_streams_from_the_other(
    cluster, workdir, shared
):
    first, second = cluster.apps
    token = curator_token(workdir, extra_env=shared)
    audio = tone("wav", seconds=1)
    with celery_worker(workdir, extra_env=shared):
        created = requests.post(
            f"{first.url}/api/v1/clips",
            headers={"Authorization": f"Token {token}"},
            data={"title": "Take 2", "genre": "jazz", "duration": "1"},
            files={"audio_file": ("take2.wav", audio, "audio/wav")},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        clip_id = created.json()["id"]
        wait_until_ready(second, clip_id, token)
    stream = f"/api/v1/clips/{clip_id}/stream?format=original"
    answers = [requests.get(app.url + stream, timeout=10) for app in cluster.apps]
    # Each replica decides, and hands nginx the same content (its digest).
    assert [answer.status_code for answer in answers] == [200, 200]
    assert all(answer.headers["X-Accel-Redirect"] for answer in answers)
    assert answers[0].headers["ETag"] == answers[1].headers["ETag"]
    # And through nginx, whichever replica it asks, the upload's very bytes.
    for _ in range(REPLICAS):
        sent = requests.get(cluster.edge.url + stream, timeout=10)
        assert sent.content == audio


def test_200_concurrent_listens_over_both_replicas_count_exactly(cluster):
    url = f"{cluster.edge.url}/api/v1/clips/1/stream"
    before = play_count(cluster.apps[0], 1)
    statuses = listen_concurrently(url, LISTENERS)
    assert statuses == [206] * (2 * LISTENERS)
    # One play per listener, whichever replica counted it; the reopen never.
    assert play_count(cluster.apps[1], 1) - before == LISTENERS
    served = [streams_served(app, 1) for app in cluster.apps]
    assert sum(served) == 2 * LISTENERS
    assert min(served) > LISTENERS / 2  # nginx spread them


def test_200_user_agents_from_one_address_over_both_replicas_count_the_cap(
    workdir, shared
):
    # No stream limit, which would refuse one address most of these requests.
    with replicas(workdir / "cap", shared | {"CLIPS_THROTTLE_STREAM": ""}) as running:
        url = f"{running.edge.url}/api/v1/clips/5/stream"
        before = play_count(running.apps[0], 5)
        statuses = listen_concurrently(url, LISTENERS, address=next(ADDRESSES))
        assert statuses == [206] * (2 * LISTENERS)
        assert play_count(running.apps[1], 5) - before == PLAYS_PER_ADDRESS
        served = [streams_served(app, 5) for app in running.apps]
        assert min(served) > LISTENERS / 2  # both replicas counted


def test_one_rate_limit_holds_across_both_replicas(cluster):
    # Straight to each replica in turn, from one address as nginx would tell it.
    headers = {"X-Forwarded-For": "203.0.113.7", "Range": "bytes=0-1"}

    def ask(app: Process) -> int:
        url = f"{app.url}/api/v1/clips/2/stream"
        return requests.get(url, headers=headers, timeout=10).status_code

    turns = itertools.islice(itertools.cycle(cluster.apps), STREAM_LIMIT)
    assert all(ask(app) != 429 for app in turns)
    assert [ask(app) for app in cluster.apps] == [429] * REPLICAS


def test_a_replica_killed_mid_run_loses_no_play_and_fails_no_listener(workdir, shared):
    count = 300
    with replicas(workdir / "kill", shared) as running:
        doomed, survivor = running.apps
        url = f"{running.edge.url}/api/v1/clips/3/stream"
        before = play_count(survivor, 3)
        survivor_before_kill = []

        def kill_midway(futures) -> None:
            while sum(future.done() for future in futures) < count // 3:
                time.sleep(0.01)
            os.killpg(doomed.process.pid, signal.SIGKILL)
            survivor_before_kill.append(streams_served(survivor, 3))

        statuses = listen_concurrently(url, count, on_done=kill_midway)
        assert statuses == [206] * (2 * count)  # nginx retried every GET
        assert doomed.process.wait(timeout=10) == -signal.SIGKILL
        assert play_count(survivor, 3) - before == count
        assert streams_served(doomed, 3) > 0
        assert streams_served(survivor, 3) > survivor_before_kill[0]


def wait_for_scrapes_of_all(prom: Prometheus, moment: float) -> None:
    """Until every replica's samples from a scrape after `moment` are in."""
    expr = (
        "count(max by (instance) "
        f'(timestamp(clips_stream_errors_total{{job="clips"}})) > {moment})'
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = prom.query(expr)
        if found and float(found[0]["value"][1]) == REPLICAS:
            return
        time.sleep(0.2)
    pytest.fail(f"Prometheus did not scrape all {REPLICAS} replicas in 30 s")


def test_prometheus_scrapes_each_replica_and_the_dashboard_sums_them(cluster, workdir):
    # By `localhost`, a name the replicas' ALLOWED_HOSTS does not list: as
    # compose's Prometheus asks each replica by the address DNS gave it.
    targets = [app.url.replace("127.0.0.1", "localhost") for app in cluster.apps]
    config = workdir / "prometheus.yml"
    scrape_config(config, {"clips": targets})
    with prometheus(workdir, config) as server:
        prom = Prometheus(server.url)
        listen_concurrently(f"{cluster.edge.url}/api/v1/clips/4/stream", 20)
        wait_for_scrapes_of_all(prom, time.time())
        up = prom.values('up{job="clips"}', by="instance")
        assert sorted(up) == sorted(t.removeprefix("http://") for t in targets)
        assert set(up.values()) == {1}
        (total,) = panel_queries("Total streams")
        per_replica = [scraped_plays(app.url) for app in cluster.apps]
        assert all(streams > 0 for streams in per_replica)
        assert prom.values(total, by="") == {"": sum(per_replica)}
