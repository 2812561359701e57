"""Slow listeners and the API: nginx holds the listeners, gunicorn stays free.

A listener that stops reading holds whoever sends it the audio. Through the shipped
nginx config with the offload on, that is nginx; with gunicorn alone it is one of
its threads, and a few such listeners take every thread. The same small gunicorn
(1 worker x 2 threads) serves both cases, so only the edge differs. Nothing is
timed: an API request either answers within a generous timeout or never does.
"""

import selectors
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from clips.tests.system.servers import edge, gunicorn, site_create

LONG_CLIP = "/api/v1/clips/1/stream"
API = ("/api/v1/clips", "/api/v1/clips/1")
# Far more than loopback's socket buffers take in for a listener that never reads.
LONG_CLIP_REPEATS = 40
# A small receive window, as a phone on a poor network has: the sender must wait.
LISTENER_RECEIVE_BUFFER = 4096
SMALL_GUNICORN = {"GUNICORN_THREADS": "2", "CLIPS_THROTTLE_STREAM": ""}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The sample clips; clip 1's audio made long (its own sample, repeated)."""
    workdir = tmp_path_factory.mktemp("slow-listeners")
    site_create(workdir)
    audio = workdir / "media" / "samples" / "ambient.mp3"
    audio.write_bytes(audio.read_bytes() * LONG_CLIP_REPEATS)
    return workdir


@contextmanager
def slow_listeners(base: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` listeners that ask for the long clip and then never read."""
    host, port = base.removeprefix("http://").split(":")
    request = f"GET {LONG_CLIP} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    with ExitStack() as stack:
        listeners = []
        for _ in range(count):
            listener = stack.enter_context(socket.socket())
            listener.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, LISTENER_RECEIVE_BUFFER
            )
            listener.connect((host, int(port)))
            listener.sendall(request)
            listeners.append(listener)
        yield listeners


def statuses(listeners: list[socket.socket], timeout: float) -> list[int | None]:
    """Each listener's response status, once its headers are in; None if they never
    came within `timeout` seconds. Reads the headers only (one small read each)."""
    found: list[int | None] = [None] * len(listeners)
    with selectors.DefaultSelector() as selector:
        for index, listener in enumerate(listeners):
            selector.register(listener, selectors.EVENT_READ, index)
        while selector.get_map():
            ready = selector.select(timeout)
            if not ready:
                break
            for key, _ in ready:
                head = key.fileobj.recv(LISTENER_RECEIVE_BUFFER)
                if head.startswith(b"HTTP/1.1 "):
                    found[key.data] = int(head.split()[1])
                selector.unregister(key.fileobj)
    return found


def api_answers(base: str) -> list[int]:
    return [requests.get(base + path, timeout=10).status_code for path in API]


@pytest.fixture(scope="module")
def through_nginx(site) -> Iterator[str]:
    with edge(site, workers=1, extra_env=SMALL_GUNICORN) as (_, server):
        yield server.url


def test_100_slow_listeners_through_the_edge_do_not_block_the_api(through_nginx):
    with slow_listeners(through_nginx, 100) as listeners:
        assert statuses(listeners, timeout=30) == [200] * 100
        assert api_answers(through_nginx) == [200, 200]


def test_a_few_slow_listeners_on_gunicorn_alone_block_the_api(site):
    """The case nginx is for: two listeners take both threads, the API waits."""
    with gunicorn(site, workers=1, extra_env=SMALL_GUNICORN) as app:
        assert api_answers(app.url) == [200, 200]
        with slow_listeners(app.url, 4) as listeners:
            # Two answered and stuck sending; two wait for a thread.
            assert Counter(statuses(listeners, timeout=3)) == {200: 2, None: 2}
            with pytest.raises(requests.Timeout):
                requests.get(app.url + API[0], timeout=3)
