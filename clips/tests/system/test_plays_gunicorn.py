"""The play rule over real connections: gunicorn, sockets, ffprobe."""

import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from clips.tests.system.servers import Process, gunicorn, site_create
from clips.tests.tools import require_tool


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Process:
    """One worker of two threads, so that requests queue as on a busy server."""
    workdir = tmp_path_factory.mktemp("plays")
    site_create(workdir)
    extra_env = {"CLIPS_THROTTLE_STREAM": "", "GUNICORN_THREADS": "2"}
    with gunicorn(workdir, workers=1, extra_env=extra_env) as server:
        yield server


def settled_plays(app: Process, clip_id: int) -> int:
    """The clip's play count once the server has worked through its queue."""
    url = f"{app.url}/api/v1/clips/{clip_id}/stats"
    count, deadline = None, time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        latest = requests.get(url, timeout=30).json()["play_count"]
        if latest == count:
            return count
        count = latest
    pytest.fail("the play count kept changing for 30 s")


def abandoned_get(app: Process, clip_id: int) -> None:
    """Send a stream GET and hang up without reading a byte of the answer."""
    address = urlsplit(app.url)
    request = (
        f"GET /api/v1/clips/{clip_id}/stream HTTP/1.1\r\nHost: {address.netloc}\r\n"
        "User-Agent: impatient\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(request)


def test_gets_closed_before_a_byte_was_read_count_one_play(app):
    for _ in range(20):
        abandoned_get(app, 1)
    assert settled_plays(app, 1) == 1


def test_ffprobe_reading_the_header_twice_is_one_play(app):
    ffprobe = require_tool("ffprobe", package="ffmpeg")
    command = [ffprobe, "-v", "error", "-show_entries", "format=duration"]
    for _ in range(2):
        result = subprocess.run(
            [*command, "-of", "csv=p=0", f"{app.url}/api/v1/clips/2/stream"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert float(result.stdout) > 1
    assert settled_plays(app, 2) == 1


def test_requests_queued_behind_busy_threads_count_one_play(app):
    """300 at once on 2 threads: most wait in the queue, and all are abandoned."""
    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(lambda _: abandoned_get(app, 3), range(300)))
    assert settled_plays(app, 3) == 1


def test_the_listen_window_survives_a_restart(tmp_path):
    site_create(tmp_path)
    extra_env = {"CLIPS_THROTTLE_STREAM": ""}
    for _ in range(2):  # the same site, a new gunicorn each time
        with gunicorn(tmp_path, workers=2, extra_env=extra_env) as server:
            for _ in range(3):
                url = f"{server.url}/api/v1/clips/4/stream"
                assert requests.get(url, timeout=30).status_code == 200
            plays = settled_plays(server, 4)
    assert plays == 1
