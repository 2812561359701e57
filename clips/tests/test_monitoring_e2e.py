"""End to end: gunicorn (two workers) scraped by a real Prometheus, queried with the
very PromQL of the Grafana dashboard, read from monitoring/grafana/dashboards.

Needs the `prometheus` binary (Debian package prometheus): skipped without it,
except in CI (CI set), where a missing binary fails.
"""

import json
import math
import time
import uuid

import pytest
import requests
import yaml

from clips.tests.servers import MONITORING, gunicorn, prometheus, site_create

pytestmark = pytest.mark.prometheus

DASHBOARD = MONITORING / "grafana" / "dashboards" / "clips.json"
# Two rounds of listens, a scrape after each, so every rate() sees an increase:
# (clip id, Range header, expected status), with a 416 in each round.
FAR = f"bytes={10**9}-"
ROUNDS = [
    [(1, None, 200), (1, None, 200), (2, None, 200), (3, FAR, 416)],
    [(1, None, 200), (2, "bytes=0-", 206), (3, None, 200), (2, "bytes=1000-", 206)],
    [(3, FAR, 416)],
]
PLAYS = {"1": 3, "2": 2, "3": 1}  # the seek to bytes=1000- does not count
PROBES = ["/healthz", "/readyz"]  # asked along with every listen


def panel_queries(title: str) -> list[str]:
    """The expressions of a dashboard panel, as Grafana sends them."""
    dashboard = json.loads(DASHBOARD.read_text())
    (panel,) = [panel for panel in dashboard["panels"] if panel["title"] == title]
    return [target["expr"] for target in panel["targets"]]


def all_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]


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

    def wait_for_scrape_after(self, moment: float) -> None:
        """Until the app's samples from a scrape after `moment` (Unix time) are in.

        Asks for a series the app exports, not `up`: Prometheus may show a
        scrape's `up` before the samples it scraped.
        """
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            scraped = self.query(
                'max(timestamp(clips_stream_errors_total{job="clips"}))'
            )
            if scraped and float(scraped[0]["value"][1]) > moment:
                return
            time.sleep(0.2)
        pytest.fail("Prometheus did not scrape the app in 30 s")


def scrape_config(app_url: str, path) -> None:
    """monitoring/prometheus.yml, pointed at the local app, scraping every second."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(MONITORING / name) for name in config["rule_files"]]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "clips"]
    job["static_configs"] = [{"targets": [app_url.removeprefix("http://")]}]
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> Prometheus:
    """The app streamed ROUNDS and Prometheus scraped it after each round."""
    workdir = tmp_path_factory.mktemp("e2e")
    site_create(workdir)
    with gunicorn(workdir, metrics_dir=workdir / "metrics", workers=2) as app:
        scrape_config(app.url, workdir / "prometheus.yml")
        with prometheus(workdir, workdir / "prometheus.yml") as server:
            prom = Prometheus(server.url)
            prom.wait_for_scrape_after(0)
            for listens in ROUNDS:
                for clip_id, range_header, status in listens:
                    # Each request a listener of its own, so every listen is a play.
                    headers = {"User-Agent": f"listener-{uuid.uuid4()}"}
                    if range_header:
                        headers["Range"] = range_header
                    url = f"{app.url}/api/v1/clips/{clip_id}/stream"
                    assert (
                        requests.get(url, headers=headers, timeout=10).status_code
                        == status
                    )
                    requests.get(
                        f"{app.url}/api/v1/clips", timeout=10
                    ).raise_for_status()
                    # Probes are not API traffic: the dashboard must not show them.
                    for probe in PROBES:
                        requests.get(f"{app.url}{probe}", timeout=10).raise_for_status()
                prom.wait_for_scrape_after(time.time())
            yield prom


def test_every_dashboard_query_returns_finite_numbers(scraped):
    for expr in all_queries():
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
    assert set(rates) == {"clip-stream", "clip-list"}
    assert all(rate > 0 for rate in rates.values())


def test_error_rate_shows_the_416s_and_no_5xx(scraped):
    streams, http_5xx = panel_queries("Error rate")
    rates = scraped.values(streams, by="reason")
    assert rates.pop("range_not_satisfiable") > 0
    assert set(rates.values()) == {0}
    assert scraped.values(http_5xx, by="") == {"": 0}


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


def test_alert_rules_are_loaded_and_quiet(scraped):
    response = requests.get(f"{scraped.url}/api/v1/rules", timeout=10).json()
    rules = [rule for group in response["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {
        "ClipsDown",
        "ClipsHigh5xxRatio",
        "ClipsSlowStreams",
        "ClipsDatabaseUnavailable",
    }
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert all(rule["state"] == "inactive" for rule in rules), rules
