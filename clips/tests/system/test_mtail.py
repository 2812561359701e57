"""monitoring/mtail/nginx.mtail on access log lines as nginx writes them.

`mtail -one_shot` reads a log once and prints what it would export. Needs the
`mtail` binary (Debian package mtail): skipped without it, except in CI (CI set),
where a missing binary fails. test_monitoring_e2e.py runs it on a real nginx.
"""

import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from clips import metrics
from clips.tests.system.servers import MTAIL_FLAGS, MTAIL_PROGRAMS
from clips.tests.tools import require_tool

WHOLE = "/_protected/audio-whole/samples/rain.mp3"
RANGE = "/_protected/audio/samples/jazz%20piano.mp3"
BUCKET = "/_protected/bucket/samples/rain.mp3"
# log_format clips: [time] "METHOD $uri" $status $body_bytes_sent
# $sent_http_content_length $request_time $upstream_response_time
LOG = [
    f'"GET {WHOLE}" 200 417186 417186 0.063 0.060',
    f'"GET {WHOLE}" 200 65536 417186 61.002 0.004',  # the listener left
    f'"GET {RANGE}" 206 100 100 0.001 0.000, 0.001',  # a retried upstream
    f'"GET {RANGE}" 206 4096 4096 0.020 0.002',
    '"GET /api/v1/clips/1/stream" 416 69 69 0.001 0.002',
    '"GET /api/v1/clips/1/stream" 200 417186 417186 0.130 0.129',  # the app sent it
    '"GET /api/v1/clips?search=a b" 200 3216 3216 0.007 0.006',
    '"POST /api/v1/clips" 502 157 157 0.001 0.000',
    '"GET /static/clips.css" 200 1200 1200 0.000 -',
    '"HEAD /api/v1/clips/1/stream" 200 0 417186 0.004 0.004',
    f'"GET {BUCKET}" 206 100 100 0.012 0.003 : 0.008',  # the app, then the bucket
]


def one_shot(lines: list[str], log) -> dict[tuple[str, tuple], float]:
    """What mtail exports after reading `lines`: (name, labels) -> value."""
    log.write_text("".join(f"[2026-11-24T21:45:00+00:00] {line}\n" for line in lines))
    result = subprocess.run(
        [
            require_tool("mtail", package="mtail"),
            f"-progs={MTAIL_PROGRAMS}",
            f"-logs={log}",
            "-one_shot",
            "-one_shot_format=prometheus",
            "-address=127.0.0.1",
            "-port=0",
            *MTAIL_FLAGS,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "compile failed" not in result.stderr, result.stderr
    return samples(result.stdout)


def samples(exposition: str) -> dict[tuple[str, tuple], float]:
    """Prometheus' text format as (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[tuple[str, tuple], float]:
    return one_shot(LOG, tmp_path_factory.mktemp("mtail") / "access.log")


def by_labels(exported, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in exported.items() if n == name}


def test_requests_are_counted_by_location_and_status_class(exported):
    assert by_labels(exported, "clips_edge_requests_total") == {
        (("location", "audio-whole"), ("status_class", "2xx")): 2,
        (("location", "audio-range"), ("status_class", "2xx")): 2,
        (("location", "app"), ("status_class", "4xx")): 1,
        (("location", "app"), ("status_class", "2xx")): 3,
        (("location", "app"), ("status_class", "5xx")): 1,
        (("location", "static"), ("status_class", "2xx")): 1,
        (("location", "audio-bucket"), ("status_class", "2xx")): 1,
    }


def test_body_bytes_are_counted_by_location(exported):
    assert by_labels(exported, "clips_edge_body_bytes_total") == {
        (("location", "audio-whole"),): 417186 + 65536,
        (("location", "audio-range"),): 100 + 4096,
        (("location", "app"),): 69 + 417186 + 3216 + 157,
        (("location", "static"),): 1200,
        (("location", "audio-bucket"),): 100,
    }


def test_only_offloaded_streams_are_timed(exported):
    for name in (
        "clips_edge_stream_duration_seconds_count",
        "clips_edge_stream_first_byte_seconds_count",
    ):
        assert by_labels(exported, name) == {
            (("location", "audio-whole"),): 2,
            (("location", "audio-range"),): 2,
            (("location", "audio-bucket"),): 1,
        }


def test_durations_are_nginx_request_times(exported):
    sums = by_labels(exported, "clips_edge_stream_duration_seconds_sum")
    assert sums[(("location", "audio-whole"),)] == pytest.approx(0.063 + 61.002)
    assert sums[(("location", "audio-range"),)] == pytest.approx(0.001 + 0.020)


def test_first_byte_is_the_app_answer_and_a_retry_counts_its_last_attempt(exported):
    sums = by_labels(exported, "clips_edge_stream_first_byte_seconds_sum")
    assert sums[(("location", "audio-whole"),)] == pytest.approx(0.060 + 0.004)
    assert sums[(("location", "audio-range"),)] == pytest.approx(0.001 + 0.002)
    assert sums[(("location", "audio-bucket"),)] == pytest.approx(0.003 + 0.008)


def test_a_stream_cut_short_is_a_listener_gone(exported):
    assert exported[("clips_edge_stream_client_gone_total", ())] == 1


def test_every_line_is_read(exported):
    assert exported[("clips_edge_log_lines_unparsed_total", ())] == 0


def test_a_line_in_another_format_is_counted_as_unparsed(tmp_path):
    old_format = f'"GET {WHOLE}" 200 417186 0.063 0.060'  # no Content-Length
    exported = one_shot([old_format, LOG[0]], tmp_path / "access.log")
    assert exported[("clips_edge_log_lines_unparsed_total", ())] == 1
    assert sum(by_labels(exported, "clips_edge_requests_total").values()) == 1


def bucket_bounds(exported, name: str) -> set[float]:
    return {
        float(dict(labels)["le"])
        for (n, labels), _ in exported.items()
        if n == f"{name}_bucket"
    }


@pytest.mark.parametrize(
    ("edge", "app"),
    [
        ("clips_edge_stream_duration_seconds", metrics.STREAM_DURATION),
        ("clips_edge_stream_first_byte_seconds", metrics.STREAM_FIRST_BYTE),
    ],
)
def test_histograms_have_the_app_buckets(exported, edge, app):
    """So that the dashboard's sum by (le) adds the app's and nginx's buckets."""
    app_exported = samples(generate_latest().decode())
    assert bucket_bounds(exported, edge) == bucket_bounds(
        app_exported, app.describe()[0].name
    )
