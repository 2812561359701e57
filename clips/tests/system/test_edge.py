"""The production edge: nginx (deploy/nginx) sends the audio, with Django's answers.

The same requests go to the app alone (Python sends the bytes) and through the
shipped nginx config with CLIPS_STREAM_OFFLOAD on (X-Accel-Redirect); status,
headers that describe the bytes, and the bytes themselves must be identical.
Every test on a site runs twice: audio on local disk, and in an S3 bucket (moto's
server), which nginx fetches through presigned URLs.
"""

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from clips import sample_audio
from clips.tests.system import servers
from clips.tests.system.servers import gunicorn, s3_server, site_create, site_env
from clips.tests.tools import BASE_DIR

RENDER = BASE_DIR / "deploy" / "nginx" / "render.py"

STREAM = "/api/v1/clips/1/stream"
# Clip 2 is ingested too; a test deletes its upload from storage.
GONE = "/api/v1/clips/2/stream?format=original"
GONE_NAME = "samples/electronic-beats.mp3"
# Clip 1 is ingested: its preview (a rendition) is the default, its upload on request.
STREAMS = {"preview": STREAM, "original": STREAM + "?format=original"}
# The headers a client may act on; Date and Server differ and don't matter.
COMPARED = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Cache-Control",
)
LONG_AGO = "Mon, 01 Jan 2001 00:00:00 GMT"

# (label, method, headers); {etag}, {last_modified}, {size} are filled in from a
# HEAD. The cases compared against nginx serving the same file.
REQUESTS = [
    ("plain", "GET", {}),
    ("head", "HEAD", {}),
    ("head-range", "HEAD", {"Range": "bytes=0-99"}),
    ("from-zero", "GET", {"Range": "bytes=0-"}),
    ("first-100", "GET", {"Range": "bytes=0-99"}),
    ("middle", "GET", {"Range": "bytes=1000-1999"}),
    ("open-end", "GET", {"Range": "bytes=200000-"}),
    ("suffix", "GET", {"Range": "bytes=-500"}),
    ("suffix-longer-than-file", "GET", {"Range": "bytes=-99999999"}),
    ("last-byte", "GET", {"Range": "bytes={last}-"}),
    ("end-past-eof", "GET", {"Range": "bytes=100-99999999"}),
    ("start-past-eof", "GET", {"Range": "bytes={size}-"}),
    ("unit-case", "GET", {"Range": "Bytes=0-99"}),
    ("inverted", "GET", {"Range": "bytes=100-50"}),
    ("multi", "GET", {"Range": "bytes=0-10,20-30"}),
    ("garbage", "GET", {"Range": "bytes=abc"}),
    ("other-unit", "GET", {"Range": "items=0-5"}),
    ("probe", "GET", {"Range": "bytes=0-1"}),
    ("if-range-current", "GET", {"Range": "bytes=100-", "If-Range": "{etag}"}),
    ("if-range-stale", "GET", {"Range": "bytes=100-", "If-Range": '"stale"'}),
    ("if-range-date", "GET", {"Range": "bytes=100-", "If-Range": "{last_modified}"}),
    ("if-range-old-date", "GET", {"Range": "bytes=100-", "If-Range": LONG_AGO}),
    ("if-range-weak", "GET", {"Range": "bytes=100-", "If-Range": "W/{etag}"}),
    ("inm-current", "GET", {"If-None-Match": "{etag}"}),
    ("inm-other", "GET", {"If-None-Match": '"other"'}),
    ("inm-star", "GET", {"If-None-Match": "*"}),
    ("inm-and-bad-range", "GET", {"If-None-Match": "{etag}", "Range": "bytes={size}-"}),
    ("inm-other-range", "GET", {"If-None-Match": '"other"', "Range": "bytes=0-99"}),
    ("ims-current", "GET", {"If-Modified-Since": "{last_modified}"}),
    ("ims-old", "GET", {"If-Modified-Since": LONG_AGO}),
    ("if-match-current", "GET", {"If-Match": "{etag}", "Range": "bytes=0-99"}),
    ("if-match-other", "GET", {"If-Match": '"other"'}),
    ("ius-old", "GET", {"If-Unmodified-Since": LONG_AGO}),
    ("ius-current", "GET", {"If-Unmodified-Since": "{last_modified}"}),
]


@pytest.fixture(scope="module", params=["disk", "bucket"])
def storage_env(request, tmp_path_factory) -> Iterator[dict[str, str]]:
    """Where the site keeps its audio: MEDIA_ROOT, or an S3 server's bucket."""
    if request.param == "disk":
        yield {}
        return
    with s3_server(tmp_path_factory.mktemp("s3")) as env:
        yield env


@pytest.fixture(scope="module")
def site(tmp_path_factory, storage_env) -> Path:
    workdir = tmp_path_factory.mktemp("edge")
    site_create(workdir, extra_env=storage_env)
    subprocess.run(
        [sys.executable, "manage.py", "ingest", "1", "2"],
        cwd=BASE_DIR,
        env=site_env(workdir) | storage_env,
        check=True,
        capture_output=True,
    )
    (workdir / "static").mkdir()
    return workdir


@pytest.fixture(scope="module")
def app_alone(site, storage_env) -> Iterator[str]:
    extra_env = {"CLIPS_THROTTLE_STREAM": "", **storage_env}
    with gunicorn(site, workers=1, extra_env=extra_env) as app:
        yield app.url


# Short, so that a test sees a listener's window close and nginx stop repeating.
WINDOW_SECONDS = 4


@pytest.fixture(scope="module")
def edge(site, storage_env) -> Iterator[str]:
    """gunicorn with the offload on, behind the shipped nginx config."""
    window = {"CLIPS_LISTEN_WINDOW_SECONDS": str(WINDOW_SECONDS)}
    with servers.edge(site, extra_env=storage_env | window) as (_, server):
        yield server.url


@pytest.fixture(scope="module")
def validators(app_alone) -> dict[str, dict[str, str]]:
    """Each stream's validators and size, by STREAMS' names."""
    found = {}
    for rendition, path in STREAMS.items():
        head = requests.head(app_alone + path, timeout=10)
        size = int(head.headers["Content-Length"])
        found[rendition] = {
            "etag": head.headers["ETag"],
            "last_modified": head.headers["Last-Modified"],
            "size": str(size),
            "last": str(size - 1),
        }
    return found


def answer(base: str, method: str, headers: dict[str, str], path: str) -> tuple:
    response = requests.request(method, base + path, headers=headers, timeout=30)
    described = {name: response.headers.get(name) for name in COMPARED}
    return response.status_code, described, response.content


@pytest.mark.parametrize("rendition", STREAMS)
@pytest.mark.parametrize(
    ("method", "headers"),
    [(method, headers) for _, method, headers in REQUESTS],
    ids=[label for label, _, _ in REQUESTS],
)
def test_nginx_sends_what_the_app_would(
    app_alone, edge, validators, method, headers, rendition
):
    mine = validators[rendition]
    filled = {name: value.format(**mine) for name, value in headers.items()}
    expected = answer(app_alone, method, filled, STREAMS[rendition])
    assert answer(edge, method, filled, STREAMS[rendition]) == expected


def test_the_offloaded_streams_are_sent_by_nginx(edge, site, storage_env):
    original = requests.get(edge + STREAMS["original"], timeout=30)
    assert original.status_code == 200
    assert original.content == sample_audio.SHIPPED["samples/ambient.mp3"].read_bytes()
    preview = requests.get(edge + STREAMS["preview"], timeout=30)
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "audio/mpeg"
    assert preview.content != original.content
    # Nothing of the bucket's own: the same headers as from disk.
    assert set(preview.headers) == {
        *("Server", "Date", "Connection", "Content-Type", "Content-Length"),
        *("Cache-Control", "ETag", "Last-Modified", "Accept-Ranges"),
        "X-Cache-Status",  # whether nginx repeated Django's decision
    }
    log = next(site.glob("nginx-*/access.log")).read_text()
    location = "/_protected/bucket/" if storage_env else "/_protected/audio-whole/"
    assert f"{location}samples/ambient.mp3" in log
    assert f"{location}renditions/" in log


def test_audio_gone_from_storage_is_404_through_nginx_too(
    edge, app_alone, site, storage_env
):
    """The row knows the file, so the app hands over; nginx finds nothing there."""
    if storage_env:
        bucket = storage_env["AWS_STORAGE_BUCKET_NAME"]
        servers.s3_client(storage_env).delete_object(Bucket=bucket, Key=GONE_NAME)
    else:
        (site / "media" / GONE_NAME).unlink()
    alone = requests.get(app_alone + GONE, timeout=10)
    assert (alone.status_code, alone.json()["code"]) == (404, "audio_missing")
    through_nginx = requests.get(edge + GONE, timeout=10)
    assert through_nginx.status_code == 404
    assert "xml" not in through_nginx.headers["Content-Type"]  # not the bucket's


def test_the_internal_locations_are_not_reachable_from_outside(edge):
    for prefix in (
        "/_protected/audio/",
        "/_protected/audio-whole/",
        "/_protected/bucket/",
    ):
        response = requests.get(f"{edge}{prefix}samples/ambient.mp3", timeout=10)
        assert response.status_code == 404


def test_metrics_are_not_served_through_the_edge(edge, app_alone):
    assert requests.get(f"{edge}/metrics", timeout=10).status_code == 404
    assert requests.get(f"{app_alone}/metrics", timeout=10).status_code == 200


def test_an_upload_over_the_limit_is_refused_before_it_is_sent(edge):
    """413 from the Content-Length alone: nothing is spooled, gunicorn sees nothing."""
    declared = 2 * 1024**3  # a curator's 2 GB upload
    with requests.Session() as session:
        request = requests.Request(
            "POST",
            f"{edge}/api/v1/clips",
            headers={"Content-Length": str(declared), "Content-Type": "audio/wav"},
            data=b"",
        ).prepare()
        request.headers["Content-Length"] = str(declared)
        response = session.send(request, timeout=10)
    assert response.status_code == 413


def test_the_body_limit_follows_the_upload_limit(settings):
    spec = importlib.util.spec_from_file_location("render", RENDER)
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    assert render.DEFAULT_MAX_UPLOAD_BYTES == settings.CLIPS_MAX_UPLOAD_BYTES
    limit = int(render.max_body(settings.CLIPS_MAX_UPLOAD_BYTES).removesuffix("k"))
    assert (
        settings.CLIPS_MAX_UPLOAD_BYTES
        < limit * 1024
        < 1.1 * (settings.CLIPS_MAX_UPLOAD_BYTES)
    )


def control_socket(pid: int) -> str:
    """The path of the gunicorn control socket that process `pid` listens on."""
    fds = Path(f"/proc/{pid}/fd")
    links = (os.readlink(fd) for fd in fds.iterdir())
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[6] in inodes and fields[7].endswith(".ctl"):
            return fields[7]
    raise AssertionError(f"no control socket open in process {pid}")


def test_two_gunicorns_on_one_host_have_their_own_control_sockets(tmp_path):
    site_create(tmp_path)
    with (
        gunicorn(tmp_path, workers=1) as first,
        gunicorn(tmp_path, workers=1) as second,
    ):
        sockets = [control_socket(server.process.pid) for server in (first, second)]
    assert sockets[0] != sockets[1]
    assert not any(Path(path).exists() for path in sockets)  # removed on exit


def test_the_anonymous_catalogue_is_cached_by_nginx_for_curators_never(edge):
    for path in ("/api/v1/clips", "/api/v1/clips/2"):
        statuses = [
            requests.get(edge + path, timeout=10).headers.get("X-Cache-Status")
            for _ in range(2)
        ]
        assert statuses[-1] == "HIT", path
        curator = requests.get(
            edge + path, headers={"Authorization": "Token abc"}, timeout=10
        )
        assert curator.headers.get("X-Cache-Status") == "BYPASS"
    stream = requests.get(edge + STREAM, headers={"Range": "bytes=0-9"}, timeout=10)
    assert stream.headers["X-Cache-Status"] in ("MISS", "HIT")  # decisions only


def play_count(app_alone: str) -> int:
    stats = requests.get(app_alone + "/api/v1/clips/1/stats", timeout=10)
    return stats.json()["play_count"]


def listen(edge: str, agent: str, method: str = "GET", **headers: str):
    """A request of the listener `agent` (on loopback, as every test's)."""
    headers["User-Agent"] = agent
    return requests.request(method, edge + STREAM, headers=headers, timeout=30)


def test_nginx_repeats_a_listeners_stream_without_the_app_and_plays_stay_exact(
    edge, app_alone
):
    before = play_count(app_alone)
    first, *repeats = [listen(edge, "repeating listener") for _ in range(3)]
    assert [r.headers["X-Cache-Status"] for r in (first, *repeats)] == [
        "MISS",
        "HIT",
        "HIT",
    ]
    assert {r.status_code for r in (first, *repeats)} == {200}
    assert all(r.content == first.content for r in repeats)
    assert all(r.headers["ETag"] == first.headers["ETag"] for r in repeats)
    assert listen(edge, "another listener").headers["X-Cache-Status"] == "MISS"
    assert play_count(app_alone) == before + 2

    # Once the window has closed, the same request is a new listen: the app counts it.
    time.sleep(WINDOW_SECONDS + 0.5)
    again = listen(edge, "repeating listener")
    assert again.status_code == 200
    assert again.headers["X-Cache-Status"] in ("MISS", "EXPIRED")  # the app's
    assert play_count(app_alone) == before + 3


def test_what_nginx_repeats_is_only_the_same_request(edge, app_alone):
    before = play_count(app_alone)
    seek = [listen(edge, "seeking listener", Range="bytes=1000-") for _ in range(2)]
    assert [r.status_code for r in seek] == [206, 206]
    assert [r.headers["X-Cache-Status"] for r in seek] == ["MISS", "HIT"]
    other_range = listen(edge, "seeking listener", Range="bytes=2000-")
    assert other_range.headers["X-Cache-Status"] == "MISS"
    assert other_range.content == seek[0].content[1000:]
    # The validators are part of the request: a 304 is the app's, never kept.
    etag = seek[0].headers["ETag"]
    for _ in range(2):
        unchanged = listen(edge, "seeking listener", **{"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert unchanged.headers.get("X-Cache-Status") != "HIT"
    # A HEAD reaches the app as a HEAD (as a GET it would count a play).
    heads = [listen(edge, "a listener's HEAD", method="HEAD") for _ in range(2)]
    assert [r.status_code for r in heads] == [200, 200]
    assert play_count(app_alone) == before  # seeks, 304s and HEADs count nothing
    # A curator always reaches the app.
    for _ in range(2):
        curator = listen(edge, "curator", Authorization="Token abc")
        assert (curator.status_code, curator.headers["X-Cache-Status"]) == (
            200,
            "BYPASS",
        )
