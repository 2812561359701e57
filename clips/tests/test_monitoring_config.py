"""monitoring/ and docker-compose.yml, checked without a Docker engine.

promtool checks the Prometheus config and alert rules and runs the rules' unit
tests; the compose file and Grafana provisioning are parsed and cross-checked.
"""

import json
import subprocess

import pytest
import yaml

from clips.tests.servers import BASE_DIR, MONITORING, require_tool

GRAFANA = MONITORING / "grafana"
DASHBOARD_PANELS = {
    "Total streams",
    "Top streamed clips",
    "Audio bytes sent per second",
    "API request rate by view",
    "Error rate",
    "Stream duration p50 / p95 / p99",
    "Stream time to first byte p50 / p95 / p99",
}


def load_yaml(path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(BASE_DIR / "docker-compose.yml")


def mounts(service: dict) -> dict[str, str]:
    """Bind mounts of a compose service: container path -> host path."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            binds[target] = source
    return binds


@pytest.mark.prometheus
@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ],
    ids=" ".join,
)
def test_promtool_passes(args):
    result = subprocess.run(
        [require_tool("promtool"), *args],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_dashboard_has_the_panels_and_uses_the_provisioned_datasource():
    dashboard = json.loads((GRAFANA / "dashboards" / "clips.json").read_text())
    datasources = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")
    (datasource,) = datasources["datasources"]
    panels = dashboard["panels"]
    assert {panel["title"] for panel in panels} == DASHBOARD_PANELS
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(target["expr"] for target in panel["targets"])


def test_compose_has_app_db_prometheus_and_grafana(compose):
    services = compose["services"]
    assert {"db", "migrate", "app", "prometheus", "grafana"} <= set(services)
    published = {
        name: {port.rsplit(":", 1)[-1] for port in service.get("ports", [])}
        for name, service in services.items()
    }
    assert published["app"] == {"8000"}
    assert published["prometheus"] == {"9090"}
    assert published["grafana"] == {"3000"}


def test_compose_volumes_are_declared_and_mounted_paths_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (BASE_DIR / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    assert {"pgdata", "media", "prometheus", "grafana"} <= set(compose["volumes"])


def test_compose_services_have_healthchecks(compose):
    for name in ("db", "prometheus", "grafana"):
        assert compose["services"][name]["healthcheck"]["test"], name
    # The app's comes with its image.
    assert "HEALTHCHECK" in (BASE_DIR / "Dockerfile").read_text()


def test_compose_migrates_and_loads_samples_before_the_app(compose):
    services = compose["services"]
    assert "migrate" in services["migrate"]["command"]
    assert "loaddata sample_clips" in services["migrate"]["command"]
    assert services["app"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def test_prometheus_in_compose_scrapes_the_app_it_may_reach(compose):
    services = compose["services"]
    config_path = mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    config = load_yaml(BASE_DIR / config_path)
    (job,) = config["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["app:8000"]}]
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounts(services["prometheus"])
    # Django answers the Host "app", and /metrics over plain http.
    assert "app" in services["app"]["environment"]["ALLOWED_HOSTS"].split(",")
    env_example = (BASE_DIR / ".env.example").read_text().splitlines()
    assert "SECURE_SSL_REDIRECT=0" in env_example


def test_grafana_in_compose_is_provisioned_from_monitoring(compose):
    grafana = compose["services"]["grafana"]
    binds = mounts(grafana)
    assert binds["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    provider = load_yaml(GRAFANA / "provisioning/dashboards/clips.yml")
    (dashboards,) = provider["providers"]
    assert binds[dashboards["options"]["path"]] == "./monitoring/grafana/dashboards"
    datasources = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    environment = grafana["environment"]
    assert environment["GF_SECURITY_ADMIN_USER"].startswith("${GRAFANA_ADMIN_USER")
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD"
    )
