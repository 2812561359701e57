"""End to end: the app scraped by a real Prometheus, queried with the very PromQL
of the Grafana dashboard, read from monitoring/grafana/dashboards. Twice: gunicorn
(two workers) alone, as with the offload off, with the Celery ingest worker on
Redis scraped beside it; and the production edge, nginx in
front with CLIPS_STREAM_OFFLOAD on, its access log read by mtail and its
connections by prometheus-nginx-exporter.

Needs the `prometheus` binary (Debian package prometheus), and for the edge
`nginx`, `mtail` and `prometheus-nginx-exporter`: skipped without them, except in
CI (CI set), where a missing binary fails.
"""

import json
import math
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from clips.tests.system import servers
from clips.tests.system.servers import (
    MONITORING,
    UNCAPPED,
    celery_worker,
    gunicorn,
    mtail,
    nginx_access_log,
    nginx_exporter,
    nginx_status_uri,
    prometheus,
    site_create,
    site_env,
)
from clips.tests.tools import BASE_DIR, redis_env

pytestmark = pytest.mark.prometheus

DASHBOARD = MONITORING / "grafana" / "dashboards" / "clips.json"
# Two rounds of listens, a scrape after each, so every rate() sees an increase:
# (clip id, request headers, expected status), with a 416 in each round.
FAR = {"Range": f"bytes={10**9}-"}
ROUNDS = [
    [(1, {}, 200), (1, {}, 200), (2, {}, 200), (3, FAR, 416)],
    [
        (1, {}, 200),
        (2, {"Range": "bytes=0-"}, 206),
        (3, {}, 200),
        (2, {"Range": "bytes=1000-"}, 206),
    ],
    [(3, FAR, 416)],
]
PLAYS = {"1": 3, "2": 2, "3": 1}  # the seek to bytes=1000- does not count
PROBES = ["/healthz", "/readyz"]  # asked along with every listen
# Through the edge: nginx sends the files, except where the app keeps the body
# (If-Match: nginx would check it before it knew the app's ETag).
KEPT = {"If-Match": "*"}
EDGE_ROUNDS = [
    [(1, {}, 200), (2, {"Range": "bytes=0-"}, 206), (1, KEPT, 200), (3, FAR, 416)],
    [
        (2, {}, 200),
        (3, {"Range": "bytes=1000-1999"}, 206),
        (1, {**KEPT, "Range": "bytes=0-99"}, 206),
        (1, {"Range": "bytes=100-"}, 206),
    ],
]
# Panels of nginx alone, empty without the edge.
EDGE_PANELS = {"Active connections"}
# Panels of the ingest, empty without a broker: the first run has one.
INGEST_PANELS = {
    "Ingest outcomes",
    "Ingest duration p50 / p95",
    "Ingest queue length",
}
# Panels of listens' progress reports: the first run sends some.
REPORT_PANELS = {"Share of the stream heard p25 / p50 / p75"}
INGESTED = 6  # a sample clip no round streams, ingested again by the worker
# A series each job exports from its start, to tell that a scrape has landed.
SCRAPED_SERIES = {
    "clips": 'clips_stream_errors_total{job="clips"}',
    "clips-worker": 'clips_ingest_total{job="clips-worker", outcome="ready"}',
    "nginx-log": 'clips_edge_log_lines_unparsed_total{job="nginx-log"}',
    "nginx": 'nginx_up{job="nginx"}',
}


def panel_queries(title: str) -> list[str]:
    """The expressions of a dashboard panel, as Grafana sends them."""
    dashboard = json.loads(DASHBOARD.read_text())
    (panel,) = [panel for panel in dashboard["panels"] if panel["title"] == title]
    return [target["expr"] for target in panel["targets"]]


def all_queries(*, edge: bool) -> list[str]:
    """Every panel's queries: with the edge, but the ingest's and the reports';
    else but nginx's."""
    dashboard = json.loads(DASHBOARD.read_text())
    left_out = INGEST_PANELS | REPORT_PANELS if edge else EDGE_PANELS
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["title"] not in left_out
        for target in panel.get("targets", [])  # a row has none
    ]


def over_counters(expr: str) -> str:
    """A panel's query over the counters' totals instead of their rates."""
    return re.sub(r"rate\((.+?)\[5m\]\)", r"\1", expr)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:
        response = requests.get(
            f"{self.url}/api/v1/query", params={"query": expr}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def values(self, expr: str, by: str) -> dict[str, float]:
        return {
            result["metric"].get(by, ""): float(result["value"][1])
            for result in self.query(expr)
        }

    def value(self, expr: str) -> float:
        (result,) = self.query(expr)
        return float(result["value"][1])

    def wait_for_scrape_after(self, moment: float, jobs=("clips",)) -> None:
        """Until each job's samples from a scrape after `moment` (Unix time) are in.

        Asks for a series each job exports, not `up`: Prometheus may show a
        scrape's `up` before the samples it scraped.
        """
        for job in jobs:
            deadline = time.monotonic() + 30
            while True:
                scraped = self.query(f"max(timestamp({SCRAPED_SERIES[job]}))")
                if scraped and float(scraped[0]["value"][1]) > moment:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"Prometheus did not scrape {job} in 30 s")
                time.sleep(0.2)


def scrape_config(path: Path, targets: dict[str, list[str]]) -> None:
    """monitoring/prometheus.yml, scraping every second the jobs in `targets`
    (job name -> local URLs, one per instance); the others are left out."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / name) for name in config["rule_files"]]
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert len(jobs) == len(targets), targets
    for job in jobs:
        urls = targets[job["job_name"]]
        job.pop("dns_sd_configs", None)  # compose's names resolve in compose only
        job["static_configs"] = [
            {"targets": [url.removeprefix("http://") for url in urls]}
        ]
    config["scrape_configs"] = jobs
    path.write_text(yaml.safe_dump(config))


def listen(base: str, clip_id: int, headers: dict[str, str], status: int) -> bytes:
    """A stream request, each a listener of its own so that every listen is a play."""
    response = requests.get(
        f"{base}/api/v1/clips/{clip_id}/stream",
        headers={"User-Agent": f"listener-{uuid.uuid4()}", **headers},
        timeout=10,
    )
    assert response.status_code == status, (clip_id, headers)
    return response.content


def report_heard_to_the_end(base: str, clip_id: int, agent: dict[str, str]) -> None:
    """That listener's player: the whole stream heard, and the listen ended."""
    response = requests.post(
        f"{base}/api/v1/clips/{clip_id}/listens",
        json={"heard": [[0, 10**4]], "ended": True},
        headers=agent,
        timeout=10,
    )
    assert response.status_code == 204, response.text


def ingest_on_the_worker(workdir: Path, broker: dict[str, str], worker_url: str):
    """Queue clip INGESTED as `manage.py ingest --queue` does; wait for the worker."""
    subprocess.run(
        [sys.executable, "manage.py", "ingest", str(INGESTED), "--queue"],
        cwd=BASE_DIR,
        env={**site_env(workdir), **broker},
        check=True,
        capture_output=True,
    )
    deadline, counted = time.monotonic() + 60, ""
    while '\nclips_ingest_total{outcome="ready"} 1.0\n' not in counted:
        assert time.monotonic() < deadline, counted
        time.sleep(0.2)
        counted = requests.get(f"{worker_url}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> Prometheus:
    """The app streamed ROUNDS and Prometheus scraped it after each round; before
    them, the worker ingested a clip the app queued."""
    workdir = tmp_path_factory.mktemp("e2e")
    site_create(workdir)
    with (
        redis_env() as broker,
        gunicorn(
            workdir,
            metrics_dir=workdir / "metrics",
            workers=2,
            extra_env=broker | UNCAPPED,
        ) as app,
        celery_worker(workdir, extra_env=broker) as worker,
    ):
        jobs = {"clips": [app.url], "clips-worker": [worker.url]}
        scrape_config(workdir / "prometheus.yml", jobs)
        with prometheus(workdir, workdir / "prometheus.yml") as server:
            prom = Prometheus(server.url)
            prom.wait_for_scrape_after(0, jobs=tuple(jobs))
            ingest_on_the_worker(workdir, broker, worker.url)
            for listens in ROUNDS:
                reported = False
                for clip_id, headers, status in listens:
                    agent = {"User-Agent": f"listener-{uuid.uuid4()}"}
                    listen(app.url, clip_id, {**agent, **headers}, status)
                    if status == 200 and not reported:  # a counted listen
                        report_heard_to_the_end(app.url, clip_id, agent)
                        reported = True
                    requests.get(
                        f"{app.url}/api/v1/clips", timeout=10
                    ).raise_for_status()
                    # Probes are not API traffic: the dashboard must not show them.
                    for probe in PROBES:
                        requests.get(f"{app.url}{probe}", timeout=10).raise_for_status()
                prom.wait_for_scrape_after(time.time(), jobs=tuple(jobs))
            yield prom


def test_every_dashboard_query_but_nginx_alone_returns_finite_numbers(scraped):
    for expr in all_queries(edge=False):
        results = scraped.query(expr)
        assert results, expr
        for result in results:
            assert math.isfinite(float(result["value"][1])), (expr, result)


def test_total_streams_is_what_was_streamed(scraped):
    (expr,) = panel_queries("Total streams")
    assert scraped.values(expr, by="") == {"": sum(PLAYS.values())}


def test_top_streamed_clips_are_the_plays_per_clip(scraped):
    (expr,) = panel_queries("Top streamed clips")
    assert scraped.values(expr, by="clip_id") == PLAYS
    genres = {r["metric"]["genre"] for r in scraped.query(expr)}
    assert genres == {"ambient", "electronic", "acoustic"}


def test_request_rate_by_view_shows_the_api_not_the_scrapes_nor_probes(scraped):
    (expr,) = panel_queries("API request rate by view")
    rates = scraped.values(expr, by="view")
    assert set(rates) == {"clip-stream", "clip-list", "clip-listens"}
    assert all(rate > 0 for rate in rates.values())


def test_error_rate_shows_the_416s_and_no_5xx(scraped):
    streams, app_5xx, nginx_5xx = panel_queries("Error rate")
    rates = scraped.values(streams, by="reason")
    assert rates.pop("range_not_satisfiable") > 0
    assert set(rates.values()) == {0}
    assert scraped.values(app_5xx, by="") == {"": 0}
    assert scraped.values(nginx_5xx, by="") == {"": 0}  # no nginx: none


def test_database_unavailable_is_zero_while_the_database_works(scraped):
    (expr,) = panel_queries("Database unavailable")
    assert scraped.values(expr, by="") == {"": 0}


def test_bytes_are_counted_for_files_only(scraped):
    (expr,) = panel_queries("Audio bytes sent per second")
    rates = scraped.values(expr, by="source")
    assert rates["file"] > 0
    assert rates["remote"] == 0


@pytest.mark.parametrize(
    "title",
    ["Stream duration p50 / p95 / p99", "Stream time to first byte p50 / p95 / p99"],
)
def test_stream_time_quantiles_are_positive_and_ordered(scraped, title):
    p50, p95, p99 = (scraped.values(expr, by="")[""] for expr in panel_queries(title))
    assert 0 < p50 <= p95 <= p99


def test_share_heard_counts_each_reported_listen_once(scraped):
    counted = scraped.value('sum(clips_listen_heard_ratio_count{job="clips"})')
    assert counted == 2  # a listen reported in each of the first two rounds
    p25, p50, p75 = (
        scraped.values(expr, by="")[""]
        for expr in panel_queries("Share of the stream heard p25 / p50 / p75")
    )
    assert 0 < p25 <= p50 <= p75 <= 1


def test_ingest_outcomes_show_the_one_the_worker_made_ready(scraped):
    (expr,) = panel_queries("Ingest outcomes")
    counted = scraped.values(over_counters(expr), by="outcome")
    assert counted.pop("ready") == 1
    assert set(counted.values()) == {0}
    assert scraped.values(expr, by="outcome")["ready"] > 0


def test_ingest_duration_quantiles_are_positive_and_ordered(scraped):
    queries = panel_queries("Ingest duration p50 / p95")
    p50, p95 = (scraped.values(expr, by="")[""] for expr in queries)
    assert 0 < p50 <= p95


def test_ingest_queue_is_empty_once_the_worker_took_the_task(scraped):
    (expr,) = panel_queries("Ingest queue length")
    assert scraped.values(expr, by="") == {"": 0}


def assert_alert_rules_loaded_and_quiet(prom: Prometheus) -> None:
    response = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()
    rules = [rule for group in response["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {
        "ClipsDown",
        "ClipsHigh5xxRatio",
        "ClipsSlowStreams",
        "ClipsDatabaseUnavailable",
        "ClipsEdgeDown",
        "ClipsEdgeMetricsDown",
        "ClipsIngestFailing",
        "ClipsIngestBacklog",
        "ClipsWorkerDown",
        "ClipsBrokerUnreachable",
    }
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert all(rule["state"] == "inactive" for rule in rules), rules


def test_alert_rules_are_loaded_and_quiet(scraped):
    assert_alert_rules_loaded_and_quiet(scraped)


# The production edge: nginx sends the streams (CLIPS_STREAM_OFFLOAD), mtail reads
# its access log, prometheus-nginx-exporter its connections.

HELD = 5  # idle client connections held open while Prometheus scrapes


@dataclass
class EdgeRun:
    prom: Prometheus
    access_log: Path
    sent_by_nginx: int  # audio body bytes the listeners got from nginx
    sent_by_app: int  # ... and from the app (the If-Match ones)
    streams_by_nginx: int
    streams_by_app: int
    open_before: float  # the Active connections panel before HELD were opened
    open_held: float  # ... and while they were open


def log_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def wait_for_mtail(url: str, access_log: Path, lines: int) -> None:
    """Until the access log has `lines` lines and mtail has read every one.

    mtail starts at the end of the log: `lines` counts from there.
    """
    start = time.monotonic()
    while time.monotonic() < start + 30:
        text = requests.get(f"{url}/metrics", timeout=10).text
        read = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(
                ("clips_edge_requests_total", "clips_edge_log_lines_unparsed_total")
            )
        )
        if read >= lines:
            return
        time.sleep(0.1)
    pytest.fail(f"mtail read {read} of {lines} lines of {access_log} in 30 s")


def connections_open(prom: Prometheus) -> float:
    expr = panel_queries("Active connections")[0]
    prom.wait_for_scrape_after(time.time(), jobs=("nginx",))
    return prom.value(expr)


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory) -> EdgeRun:
    """EDGE_ROUNDS through nginx, a scrape of all three jobs after each round."""
    workdir = tmp_path_factory.mktemp("edge-e2e")
    site_create(workdir)
    metrics_dir = workdir / "metrics"
    with (
        servers.edge(
            workdir, workers=2, metrics_dir=metrics_dir, extra_env=UNCAPPED
        ) as (app, edge),
        mtail(workdir, access_log=nginx_access_log(edge)) as log_reader,
        nginx_exporter(workdir, scrape_uri=nginx_status_uri(edge)) as exporter,
    ):
        targets = {
            "clips": [app.url],
            "nginx-log": [log_reader.url],
            "nginx": [exporter.url],
        }
        scrape_config(workdir / "prometheus.yml", targets)
        with prometheus(workdir, workdir / "prometheus.yml") as server:
            prom = Prometheus(server.url)
            prom.wait_for_scrape_after(0, jobs=targets)
            sent = {"nginx": 0, "app": 0}
            streams = {"nginx": 0, "app": 0}
            requests_sent = 0
            for listens in EDGE_ROUNDS:
                for clip_id, headers, status in listens:
                    body = listen(edge.url, clip_id, headers, status)
                    requests_sent += 1
                    if status in (200, 206):
                        sender = "app" if "If-Match" in headers else "nginx"
                        sent[sender] += len(body)
                        streams[sender] += 1
                wait_for_mtail(log_reader.url, nginx_access_log(edge), requests_sent)
                prom.wait_for_scrape_after(time.time(), jobs=targets)
            open_before = connections_open(prom)
            address = ("127.0.0.1", int(edge.url.rsplit(":", 1)[1]))
            held = [socket.create_connection(address) for _ in range(HELD)]
            try:
                open_held = connections_open(prom)
            finally:
                for connection in held:
                    connection.close()
            yield EdgeRun(
                prom=prom,
                access_log=nginx_access_log(edge),
                sent_by_nginx=sent["nginx"],
                sent_by_app=sent["app"],
                streams_by_nginx=streams["nginx"],
                streams_by_app=streams["app"],
                open_before=open_before,
                open_held=open_held,
            )


def test_every_dashboard_query_returns_finite_numbers_through_the_edge(edge_run):
    for expr in all_queries(edge=True):
        results = edge_run.prom.query(expr)
        assert results, expr
        for result in results:
            assert math.isfinite(float(result["value"][1])), (expr, result)


def test_mtail_reads_every_line_nginx_writes(edge_run):
    unparsed = 'clips_edge_log_lines_unparsed_total{job="nginx-log"}'
    assert edge_run.prom.value(unparsed) == 0


def test_audio_bytes_are_what_the_listeners_got_counted_once(edge_run):
    """The bytes panel over the counters' totals: nginx's and the app's, no more."""
    assert edge_run.sent_by_nginx > 0
    assert edge_run.sent_by_app > 0
    (expr,) = panel_queries("Audio bytes sent per second")
    assert edge_run.prom.values(over_counters(expr), by="source") == {
        "file": edge_run.sent_by_nginx + edge_run.sent_by_app,
        "remote": 0,
    }
    rates = edge_run.prom.values(expr, by="source")
    assert rates["file"] > 0


def test_nginx_bytes_are_those_of_its_access_log(edge_run):
    """Bytes from the internal locations: the log, mtail and the listeners agree."""
    logged = sum(
        int(line.split('" ', 1)[1].split()[1])
        for line in edge_run.access_log.read_text().splitlines()
        if '"GET /_protected/' in line
    )
    assert logged == edge_run.sent_by_nginx
    audio = 'sum(clips_edge_body_bytes_total{job="nginx-log", location=~"audio-.*"})'
    assert edge_run.prom.value(audio) == logged


def test_each_stream_is_timed_once_by_whoever_sent_it(edge_run):
    counts = {
        "nginx": 'sum(clips_edge_stream_duration_seconds_count{job="nginx-log"})',
        "app": 'sum(clips_stream_duration_seconds_count{job="clips"})',
    }
    assert edge_run.prom.value(counts["nginx"]) == edge_run.streams_by_nginx
    assert edge_run.prom.value(counts["app"]) == edge_run.streams_by_app


@pytest.mark.parametrize(
    "title",
    ["Stream duration p50 / p95 / p99", "Stream time to first byte p50 / p95 / p99"],
)
def test_stream_time_quantiles_through_the_edge_are_positive_and_ordered(
    edge_run, title
):
    queries = panel_queries(title)
    p50, p95, p99 = (edge_run.prom.values(expr, by="")[""] for expr in queries)
    assert 0 < p50 <= p95 <= p99


@pytest.mark.parametrize(
    "title",
    ["Stream duration p50 / p95 / p99", "Stream time to first byte p50 / p95 / p99"],
)
def test_stream_time_panels_count_every_stream_once(edge_run, title):
    """The histogram the quantiles are taken of holds nginx's and the app's streams."""
    expr = panel_queries(title)[0]
    buckets = over_counters(expr[expr.index(",") + 1 : expr.rindex(")")])
    expected = edge_run.streams_by_nginx + edge_run.streams_by_app
    counts = edge_run.prom.values(buckets, by="le")
    for _ in range(3):  # a worker may close its last stream after a scrape began
        if counts["+Inf"] == expected:
            break
        edge_run.prom.wait_for_scrape_after(time.time(), jobs=("clips", "nginx-log"))
        counts = edge_run.prom.values(buckets, by="le")
    assert counts["+Inf"] == expected
    # One spelling of each bound (mtail's le="1" relabelled to the app's "1.0").
    assert len({float(le) for le in counts}) == len(counts)


def test_error_rate_through_the_edge_shows_the_416s_and_no_5xx(edge_run):
    streams, app_5xx, nginx_5xx = panel_queries("Error rate")
    rates = edge_run.prom.values(streams, by="reason")
    assert rates.pop("range_not_satisfiable") > 0
    assert set(rates.values()) == {0}  # client_gone among them, from both
    assert edge_run.prom.values(nginx_5xx, by="") == {"": 0}
    assert edge_run.prom.values(app_5xx, by="") == {"": 0}


def test_active_connections_count_the_listeners_nginx_holds(edge_run):
    assert edge_run.open_before >= 1  # the exporter's own
    assert edge_run.open_held - edge_run.open_before >= HELD


def test_alert_rules_are_loaded_and_quiet_through_the_edge(edge_run):
    assert_alert_rules_loaded_and_quiet(edge_run.prom)
