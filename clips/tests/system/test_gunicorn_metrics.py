"""/metrics under gunicorn with two workers sums what every worker counted."""

import os
import shutil
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from clips.tests.system.servers import UNCAPPED, gunicorn, site_create

BATCH = 16


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("gunicorn")
    site_create(workdir)
    return workdir


@pytest.fixture(scope="module")
def metrics_dir(workdir) -> Path:
    return workdir / "metrics"


@pytest.fixture(scope="module")
def app(workdir, metrics_dir):
    with gunicorn(
        workdir, metrics_dir=metrics_dir, workers=2, extra_env=UNCAPPED
    ) as app:
        yield app


def scraped_plays(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "clips_streams_total"
    )


def plays_by_worker(metrics_dir: Path) -> dict[int, float]:
    """Each worker's own file, read on its own: who counted what."""
    plays = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        plays[pid] = sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
            if sample.name == "clips_streams_total"
        )
    return plays


def listen(url: str) -> int:
    """A new listener (their own User-Agent), so that every listen is a play."""
    # A new connection each time, so that either worker may accept it.
    headers = {"Connection": "close", "User-Agent": f"listener-{uuid.uuid4()}"}
    return requests.get(url, headers=headers, timeout=30).status_code


def listen_until_both_workers_served(app, metrics_dir: Path) -> int:
    """Concurrent listens in batches (at most ten) until two workers counted some."""
    plays = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for batch in range(10):
            clip_ids = [1 + (batch + i) % 6 for i in range(BATCH)]
            urls = [f"{app.url}/api/v1/clips/{pk}/stream" for pk in clip_ids]
            assert list(pool.map(listen, urls)) == [200] * BATCH
            plays += BATCH
            if sum(1 for n in plays_by_worker(metrics_dir).values() if n) >= 2:
                break
    return plays


def test_metrics_sum_the_plays_of_both_workers(app, metrics_dir):
    before = scraped_plays(app.url)
    plays = listen_until_both_workers_served(app, metrics_dir)
    by_worker = plays_by_worker(metrics_dir)
    assert sum(1 for n in by_worker.values() if n) >= 2, by_worker
    assert sum(by_worker.values()) == before + plays
    assert scraped_plays(app.url) == before + plays


def test_plays_of_a_worker_that_died_stay_in_the_sum(app, metrics_dir):
    listen_until_both_workers_served(app, metrics_dir)
    before = scraped_plays(app.url)
    victim = max(plays_by_worker(metrics_dir).items(), key=lambda item: item[1])
    os.kill(victim[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while f"Worker (pid:{victim[0]}) was sent SIGKILL" not in app.log_text():
        assert time.monotonic() < deadline, app.log_text()
        time.sleep(0.1)
    assert scraped_plays(app.url) == before


def test_a_restart_starts_from_zero(app, workdir, metrics_dir):
    listen_until_both_workers_served(app, metrics_dir)
    stale = workdir / "stale-metrics"
    shutil.copytree(metrics_dir, stale)
    assert plays_by_worker(stale)
    with gunicorn(workdir, metrics_dir=stale, workers=2) as restarted:
        assert scraped_plays(restarted.url) == 0
