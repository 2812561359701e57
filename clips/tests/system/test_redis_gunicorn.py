"""Shared state in Redis through real processes: one rate limit, one catalogue cache.

Each request comes from a client address of its own (X-Forwarded-For, as behind a
proxy with NUM_PROXIES=1), so the tests share the servers but never a limit.
"""

import itertools
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from clips.tests.system.servers import Process, gunicorn, redis_server, site_create
from clips.tests.tools import free_port, redis_env

RATE = 10
HOST = "clips.test"  # one public name for every process, as behind a proxy
_addresses = (f"192.0.2.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return site_create(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="module")
def shared_env():
    with redis_env() as env:
        yield env | {
            "CLIPS_THROTTLE_STREAM": f"{RATE}/min",
            "CLIPS_LIST_CACHE_SECONDS": "60",
            "NUM_PROXIES": "1",
            "ALLOWED_HOSTS": f"127.0.0.1,{HOST}",
        }


@pytest.fixture(scope="module")
def two_apps(site, shared_env) -> tuple[Process, Process]:
    """Two gunicorn masters of two workers each: two replicas, one Redis."""
    with (
        gunicorn(site, workers=2, extra_env=shared_env) as one,
        gunicorn(site, workers=2, extra_env=shared_env) as other,
    ):
        yield one, other


@pytest.fixture(scope="module")
def five_workers(site, shared_env) -> Process:
    with gunicorn(site, workers=5, extra_env=shared_env) as app:
        yield app


def stream_statuses(apps: list[Process], *, requests_: int, at_once: int = 1) -> list:
    """HEAD clip 1's stream from one new client, round-robin over apps.

    Each request opens its own connection, so any worker of an app may take it.
    """
    headers = {"X-Forwarded-For": next(_addresses)}
    urls = [
        f"{apps[n % len(apps)].url}/api/v1/clips/1/stream" for n in range(requests_)
    ]

    def head(url: str) -> int:
        return requests.head(url, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return list(pool.map(head, urls))


def test_two_gunicorns_enforce_one_stream_limit_not_two(two_apps):
    statuses = stream_statuses(list(two_apps), requests_=4 * RATE)
    assert statuses == [200] * RATE + [429] * 3 * RATE


def test_five_workers_enforce_one_stream_limit_not_five(five_workers):
    statuses = stream_statuses([five_workers], requests_=5 * RATE)
    assert statuses == [200] * RATE + [429] * 4 * RATE


def test_concurrent_requests_on_five_workers_are_held_to_the_limit(five_workers):
    statuses = stream_statuses([five_workers], requests_=5 * RATE, at_once=32)
    assert Counter(statuses) == {200: RATE, 429: 4 * RATE}


def test_a_catalogue_answer_cached_by_one_gunicorn_is_served_by_the_other(two_apps):
    one, other = two_apps
    paths = ("/api/v1/clips", "/api/v1/clips/5")

    def clip_5_plays(app: Process, path: str, host: str) -> int:
        body = requests.get(app.url + path, headers={"Host": host}, timeout=30).json()
        clips = body.get("results", [body])
        return next(clip["play_count"] for clip in clips if clip["id"] == 5)

    before = {path: clip_5_plays(one, path, HOST) for path in paths}
    listen = requests.get(
        f"{other.url}/api/v1/clips/5/stream",
        headers={"X-Forwarded-For": next(_addresses)},
        timeout=30,
    )
    assert listen.status_code == 200
    for path in paths:
        # The other process answers from the first one's cache...
        assert clip_5_plays(other, path, HOST) == before[path]
        # ...while its database already has the play.
        assert clip_5_plays(other, path, "127.0.0.1") == before[path] + 1


def test_streams_and_the_catalogue_answer_while_redis_is_down(site):
    """Nothing listens on the port: rate limits let requests through, the
    catalogue comes from the database; each counted, logged without a traceback
    (once a minute per worker), no 500."""
    down = {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "CLIPS_THROTTLE_STREAM": f"{RATE}/min",
        "CLIPS_LIST_CACHE_SECONDS": "60",
    }
    paths = ["/api/v1/clips", "/api/v1/clips/2", "/api/v1/clips/2/stream"]
    with gunicorn(site, workers=2, extra_env=down) as app:
        for path in paths * 2:
            assert requests.get(app.url + path, timeout=30).status_code == 200
        metrics = requests.get(f"{app.url}/metrics", timeout=30).text
    log = app.error_text()
    for use in ("catalogue", "rate_limit"):
        assert 1 <= log.count(f"Cache unavailable ({use}): GET /api/v1/clips") <= 2
    assert "ConnectionError" in log
    assert "Traceback" not in log
    assert 'clips_cache_unavailable_total{use="catalogue"} 4.0' in metrics
    assert 'clips_cache_unavailable_total{use="rate_limit"} 2.0' in metrics


def test_a_redis_that_never_answers_delays_requests_by_its_timeouts_only(site):
    """The kernel accepts connections to a listening socket nobody reads."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        silent_redis = {
            "REDIS_URL": f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            "CLIPS_THROTTLE_STREAM": f"{RATE}/min",
            "CLIPS_LIST_CACHE_SECONDS": "60",
        }
        with gunicorn(site, workers=1, extra_env=silent_redis) as app:
            for path in ("/api/v1/clips", "/api/v1/clips/3", "/api/v1/clips/3/stream"):
                started = time.monotonic()
                assert requests.get(app.url + path, timeout=30).status_code == 200
                # One call of 0.5 s (settings.CACHES), with room for a busy machine.
                assert time.monotonic() - started < 2.5
            metrics = requests.get(f"{app.url}/metrics", timeout=30).text
    log = app.error_text()
    assert "(catalogue): GET /api/v1/clips: TimeoutError" in log
    assert "(rate_limit): GET /api/v1/clips/3/stream: TimeoutError" in log
    assert 'clips_cache_unavailable_total{use="catalogue"} 2.0' in metrics
    assert 'clips_cache_unavailable_total{use="rate_limit"} 1.0' in metrics


def test_a_redis_outage_is_logged_once_a_minute_per_worker_and_counted_per_request(
    site, tmp_path
):
    """Redis of the test's own, stopped mid-run: before, every request that went on
    without it logged a line (hundreds a second under load)."""
    requests_ = 200
    with redis_server(tmp_path) as own_redis:
        env = {"REDIS_URL": own_redis.url, "CLIPS_THROTTLE_STREAM": "10000/min"}
        with gunicorn(site, workers=2, extra_env=env) as app:
            url = f"{app.url}/api/v1/clips/4/stream"
            assert requests.head(url, timeout=30).status_code == 200
            own_redis.process.terminate()
            own_redis.process.wait(timeout=15)
            for _ in range(requests_):
                assert requests.head(url, timeout=30).status_code == 200
            metrics = requests.get(f"{app.url}/metrics", timeout=30).text
    lines = app.error_text().count("Cache unavailable (rate_limit): ")
    assert 1 <= lines <= 2  # the first request on each worker
    assert f'clips_cache_unavailable_total{{use="rate_limit"}} {requests_}.0' in metrics
