"""monitoring/ and docker-compose.yml, checked without a Docker engine.

promtool checks the Prometheus config and alert rules and runs the rules' unit
tests; the compose file and Grafana provisioning are parsed and cross-checked, and
the real `docker compose config` resolves the compose file with the unedited
.env.example, as `cp .env.example .env && docker compose up --build` would. The
nginx service's config is filled in as its image does and checked by `nginx -t`.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from clips.tests.system.compose import (
    compose_config,
    project_copy,
    published_ports,
    resolve,
)
from clips.tests.system.servers import (
    MONITORING,
    MTAIL_FLAGS,
    MTAIL_PROGRAMS,
    NGINX,
    edge,
    nginx_render,
    site_create,
    site_env,
)
from clips.tests.tools import BASE_DIR, require_tool

GRAFANA = MONITORING / "grafana"
TEMPLATE = NGINX / "clips.conf.template"
# The nginx image fills /etc/nginx/templates/*.template into /etc/nginx/conf.d/.
TEMPLATE_MOUNT = "/etc/nginx/templates/default.conf.template"
DASHBOARD_PANELS = {
    "Total streams",
    "Top streamed clips",
    "Audio bytes sent per second",
    "API request rate by view",
    "Error rate",
    "Stream duration p50 / p95 / p99",
    "Stream time to first byte p50 / p95 / p99",
    "Database unavailable",
    "Active connections",
    "Ingest outcomes",
    "Ingest duration p50 / p95",
    "Ingest queue length",
    "Share of the stream heard p25 / p50 / p75",
}
DASHBOARD_ROWS = {
    "Ingest",
    "Listening",
}  # a heading over the panels below it, with no query
# Prometheus' jobs and what compose runs for each: (service, port).
SCRAPED = {"clips": ("app", 8000), "nginx-log": ("mtail", 3903)}
SCRAPED["clips-worker"] = ("worker", 9808)  # its WORKER_METRICS_BIND
SCRAPED["nginx"] = ("nginx-exporter", 9113)  # the exporter's default port
# Jobs with a target per replica: every address compose's DNS gives the service.
DISCOVERED = {"clips", "clips-worker"}


def load_yaml(path):
    return yaml.safe_load(path.read_text())


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a plain .env file such as .env.example."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and line[0] != "#")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(BASE_DIR / "docker-compose.yml")


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """docker-compose.yml as compose resolves it with the unedited .env.example."""
    return resolve(project_copy(tmp_path_factory.mktemp("compose")))


def mounts(service: dict) -> dict[str, str]:
    """Bind mounts of a compose service: container path -> host path."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            binds[target] = source
    return binds


def named_mounts(service: dict) -> dict[str, str]:
    """Named volumes of a compose service: container path -> `volume[:mode]`."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if not source.startswith("./"):
            found[target] = ":".join([source, *mode])
    return found


def envsubst_names(environment: dict[str, str]) -> list[str]:
    """The variables the nginx image substitutes: those NGINX_ENVSUBST_FILTER names."""
    pattern = re.compile(environment["NGINX_ENVSUBST_FILTER"])
    return [name for name in environment if pattern.search(name)]


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
    rows = [panel for panel in dashboard["panels"] if panel["type"] == "row"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert {row["title"] for row in rows} == DASHBOARD_ROWS
    assert {panel["title"] for panel in panels} == DASHBOARD_PANELS
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert all(target["expr"] for target in panel["targets"])


def test_only_nginx_publishes_the_apps_port_8000(resolved):
    services = resolved["services"]
    expected = {"db", "migrate", "app", "redis", "nginx", "prometheus", "grafana"}
    assert expected <= set(services)
    assert published_ports(services["nginx"]) == {("8000", "8000")}
    assert published_ports(services["prometheus"]) == {("9090", "9090")}
    assert published_ports(services["grafana"]) == {("3000", "3000")}
    internal = ("db", "migrate", "app", "redis", "mtail", "nginx-exporter")
    assert not any(published_ports(services[name]) for name in internal)


def test_the_app_is_behind_nginx_with_the_stream_offload(resolved):
    app = resolved["services"]["app"]["environment"]
    assert app["CLIPS_STREAM_OFFLOAD"] == "1"
    assert app["NUM_PROXIES"] == "1"
    edge = resolved["services"]["nginx"]["environment"]
    assert edge["CLIPS_UPSTREAM"] == "app:8000"  # where Prometheus scrapes, too
    assert edge["CLIPS_LISTEN"] == "8000"


def test_the_app_scales_out_with_compose_scale(compose, resolved):
    """`docker compose up --scale app=N`: nothing in app may name one container."""
    app = compose["services"]["app"]
    assert not {"container_name", "hostname", "ports"} & set(app)
    assert "replicas" not in app.get("deploy", {})  # --scale decides
    # nginx and Prometheus reach the replicas by the service's name alone.
    edge = resolved["services"]["nginx"]["environment"]
    assert edge["CLIPS_UPSTREAM"].split(":")[0] == "app"
    assert "app" in resolved["services"]["prometheus"]["depends_on"]


def test_the_app_shares_its_state_in_compose_s_own_redis(compose, resolved):
    assert resolved["services"]["app"]["environment"]["REDIS_URL"] == (
        "redis://redis:6379/0"
    )
    assert compose["services"]["app"]["depends_on"]["redis"] == {
        "condition": "service_healthy"
    }
    # Nothing on disk: rate limits and cached answers are worth no volume.
    assert compose["services"]["redis"]["command"][1:] == [
        *("--save", ""),
        *("--appendonly", "no"),
    ]
    assert "volumes" not in compose["services"]["redis"]


def test_nginx_fills_the_shipped_template_with_every_variable_it_uses(
    compose, resolved
):
    assert mounts(compose["services"]["nginx"]) == {
        TEMPLATE_MOUNT: f"./{TEMPLATE.relative_to(BASE_DIR)}"
    }
    assert f"{TEMPLATE_MOUNT}:ro" in compose["services"]["nginx"]["volumes"][0]
    environment = resolved["services"]["nginx"]["environment"]
    used = set(re.findall(r"\$\{(\w+)\}", TEMPLATE.read_text()))
    assert used <= set(envsubst_names(environment))


def test_nginx_reads_the_media_and_static_files_the_app_and_migrate_write(
    compose, resolved
):
    services = compose["services"]
    media = resolved["services"]["app"]["environment"]["MEDIA_ROOT"]
    static = resolved["services"]["migrate"]["environment"]["STATIC_ROOT"]
    edge = resolved["services"]["nginx"]["environment"]
    assert (edge["CLIPS_MEDIA_ROOT"], edge["CLIPS_STATIC_ROOT"]) == (media, static)
    assert named_mounts(services["app"]) == {media: "media"}
    assert named_mounts(services["migrate"]) == {media: "media", static: "static"}
    assert named_mounts(services["nginx"]) == {
        media: "media:ro",
        static: "static:ro",
        str(Path(edge["CLIPS_ACCESS_LOG"]).parent): "nginx-log",
    }
    assert "collectstatic --noinput" in services["migrate"]["command"]


def test_nginx_takes_uploads_up_to_the_apps_limit(resolved):
    render = nginx_render()
    app = resolved["services"]["app"]["environment"]
    limit = int(app.get("CLIPS_MAX_UPLOAD_BYTES") or render.DEFAULT_MAX_UPLOAD_BYTES)
    edge = resolved["services"]["nginx"]["environment"]
    assert edge["CLIPS_MAX_BODY"] == render.max_body(limit)


def test_nginx_as_its_image_fills_the_template_passes_nginx_t(resolved, tmp_path):
    """The image's envsubst on compose's values; only paths and `app` are local."""
    environment = resolved["services"]["nginx"]["environment"] | {
        "CLIPS_UPSTREAM": "127.0.0.1:8000",  # `app` resolves only in compose
        "CLIPS_MEDIA_ROOT": str(tmp_path / "media"),
        "CLIPS_STATIC_ROOT": str(tmp_path / "static"),
        "CLIPS_ACCESS_LOG": str(tmp_path / "access.log"),
        "CLIPS_CACHE_DIR": str(tmp_path / "cache"),
    }
    names = envsubst_names(environment)
    server = subprocess.run(
        [
            require_tool("envsubst", package="gettext-base"),
            " ".join(f"${{{name}}}" for name in names),
        ],
        input=TEMPLATE.read_text(),
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    directory = tmp_path / "nginx"
    config = nginx_render().render(
        directory, {name: environment[name] for name in names}
    )
    # make serve's render.py fills the same template alike.
    assert (directory / "clips.conf").read_text() == server
    checked = subprocess.run(
        [require_tool("nginx", package="nginx"), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_env_example_sets_the_database_as_the_service_description_does():
    env = env_file(BASE_DIR / ".env.example")
    assert {name: value for name, value in env.items() if "POSTGRES" in name} == {
        "POSTGRES_SERVER": "db",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "postgres",
        "POSTGRES_DB": "clips_db",
        "POSTGRES_PORT": "5432",
    }
    assert "DATABASE_URL" not in env


def test_db_app_and_migrate_share_the_database_credentials_of_env(resolved):
    services = resolved["services"]
    env_example = env_file(BASE_DIR / ".env.example")
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        for service in ("db", "app", "migrate"):
            assert services[service]["environment"][name] == env_example[name], service
    for service in ("app", "migrate"):
        environment = services[service]["environment"]
        assert environment["POSTGRES_SERVER"] == "db"
        assert environment["POSTGRES_PORT"] == "5432"
        assert "DATABASE_URL" not in environment


def test_a_database_password_with_special_characters_reaches_db_and_app_alike(
    tmp_path,
):
    project = project_copy(tmp_path)
    env = (project / ".env").read_text()
    password = "POSTGRES_PASSWORD='p@ss w#rd:/?%$x \"q\"'"
    (project / ".env").write_text(env.replace("POSTGRES_PASSWORD=postgres", password))
    services = resolve(project)["services"]
    db_password = services["db"]["environment"]["POSTGRES_PASSWORD"]
    assert db_password.startswith("p@ss w#rd:/?%")
    assert services["app"]["environment"]["POSTGRES_PASSWORD"] == db_password
    assert services["migrate"]["environment"]["POSTGRES_PASSWORD"] == db_password


def test_compose_refuses_to_start_without_database_credentials(tmp_path):
    project = project_copy(tmp_path)
    env = (project / ".env").read_text()
    (project / ".env").write_text(env.replace("POSTGRES_DB=clips_db\n", ""))
    result = compose_config(project)
    assert result.returncode != 0
    assert "set POSTGRES_DB in .env" in result.stderr


def test_the_app_answers_localhost_and_app_on_plain_http(resolved):
    environment = resolved["services"]["app"]["environment"]
    assert {"localhost", "127.0.0.1", "app"} <= set(
        environment["ALLOWED_HOSTS"].split(",")
    )
    assert environment["SECURE_SSL_REDIRECT"] == "0"
    assert environment["DEBUG"] == "0"


def test_compose_volumes_are_declared_and_mounted_paths_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (BASE_DIR / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    assert {"pgdata", "media", "static", "prometheus", "grafana"} <= set(
        compose["volumes"]
    )


def test_compose_services_have_healthchecks(compose):
    for name in ("db", "app", "redis", "nginx", "prometheus", "grafana"):
        assert compose["services"][name]["healthcheck"]["test"], name
    # Compose asks the app if it is ready, the image only if it is alive; both
    # commands are run against gunicorn in test_health_gunicorn.py.
    assert compose["services"]["app"]["healthcheck"]["test"][-1] == "/readyz"
    # nginx is healthy when it answers and reaches the app.
    edge = compose["services"]["nginx"]["healthcheck"]["test"]
    assert edge[-1] == "http://127.0.0.1:8000/healthz"
    assert "HEALTHCHECK" in (BASE_DIR / "Dockerfile").read_text()


def test_every_long_running_service_is_started_again_when_it_dies(resolved):
    """Only the one-off migrate job may stay stopped."""
    services = resolved["services"]
    assert {name for name, service in services.items() if "restart" not in service} == {
        "migrate"
    }
    assert {
        service["restart"] for service in services.values() if "restart" in service
    } == {"unless-stopped"}


def test_compose_migrates_and_loads_samples_before_the_app(compose):
    services = compose["services"]
    assert "migrate" in services["migrate"]["command"]
    assert "loaddata sample_clips" in services["migrate"]["command"]
    assert services["app"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }


def test_prometheus_in_compose_scrapes_the_services_it_may_reach(compose):
    services = compose["services"]
    config_path = mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"]
    config = load_yaml(BASE_DIR / config_path)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(SCRAPED)
    for name, (service, port) in SCRAPED.items():
        assert service in services
        if name in DISCOVERED:
            (found,) = jobs[name]["dns_sd_configs"]
            assert (found["names"], found["type"]) == ([service], "A")
            assert found["port"] == port
            assert "static_configs" not in jobs[name]
        else:
            assert jobs[name]["static_configs"] == [{"targets": [f"{service}:{port}"]}]
    assert f"-port={SCRAPED['nginx-log'][1]}" in services["mtail"]["command"]
    worker_bind = services["worker"]["environment"]["WORKER_METRICS_BIND"]
    assert worker_bind == f"0.0.0.0:{SCRAPED['clips-worker'][1]}"
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounts(services["prometheus"])


def test_mtail_in_compose_runs_as_the_tests_do(compose):
    """The program of monitoring/mtail, the tests' flags, nginx's shared log."""
    mtail = compose["services"]["mtail"]
    command = mtail["command"]
    assert command[0] == "mtail"
    assert set(MTAIL_FLAGS) <= set(command)
    (programs,) = [arg.split("=", 1)[1] for arg in command if arg.startswith("-progs")]
    assert BASE_DIR / mounts(mtail)[programs] == MTAIL_PROGRAMS
    (log,) = [arg.split("=", 1)[1] for arg in command if arg.startswith("-logs=")]
    log_volume = {
        target: source
        for source, target, *_ in (volume.split(":") for volume in mtail["volumes"])
    }[str(Path(log).parent)]
    assert log_volume in compose["volumes"]
    # nginx (in compose with make serve's branch) must write there.
    if "nginx" in compose["services"]:
        nginx = compose["services"]["nginx"]
        assert f"{log_volume}:{Path(log).parent}" in nginx["volumes"]
        assert environment(nginx)["CLIPS_ACCESS_LOG"] == log


def environment(service: dict) -> dict[str, str]:
    """A compose service's environment, from either of compose's ways to write it."""
    variables = service.get("environment", {})
    if isinstance(variables, list):
        return dict(variable.split("=", 1) for variable in variables)
    return variables


def test_the_exporter_in_compose_reads_nginx_stub_status(compose):
    command = compose["services"]["nginx-exporter"]["command"]
    assert command[0] == "prometheus-nginx-exporter"
    assert "-nginx.scrape-uri=http://nginx:8081/stub_status" in command
    if "nginx" in compose["services"]:  # nginx listens there, unpublished
        nginx = compose["services"]["nginx"]
        assert environment(nginx)["CLIPS_STATUS_LISTEN"] == "8081"
        assert all(target != "8081" for _, target in published_ports(nginx))


def test_the_edge_metrics_image_has_what_compose_runs(compose):
    dockerfile = (MONITORING / "Dockerfile").read_text()
    for name in ("mtail", "nginx-exporter"):
        service = compose["services"][name]
        assert (BASE_DIR / service["build"]).resolve() == MONITORING
        assert service["command"][0] in dockerfile


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


def test_grafana_admin_is_admin_admin_with_the_env_example(resolved):
    environment = resolved["services"]["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_USER"] == "admin"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == "admin"


def test_the_app_as_compose_configures_it_serves_localhost(resolved, tmp_path):
    """gunicorn with the app container's environment behind the shipped nginx.

    Only the database and the paths are ours, and no Redis (local memory).
    """
    environment = resolved["services"]["app"]["environment"]
    # The hosts `db` and `redis` exist only on compose's network.
    container_only = ("POSTGRES_", "REDIS_URL", "GUNICORN_", "MEDIA_ROOT")
    extra_env = {
        name: value
        for name, value in environment.items()
        if not name.startswith(container_only)
    }
    site_create(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=BASE_DIR,
        env=site_env(tmp_path)
        | {"DJANGO_SUPERUSER_USERNAME": "admin", "DJANGO_SUPERUSER_PASSWORD": "pw"}
        | {"DJANGO_SUPERUSER_EMAIL": "admin@example.com"},
        check=True,
        capture_output=True,
    )
    with edge(tmp_path, extra_env=extra_env) as (app, server):
        localhost = server.url.replace("127.0.0.1", "localhost")
        assert requests.get(f"{localhost}/", timeout=10).status_code == 200
        assert requests.get(f"{localhost}/docs", timeout=10).status_code == 200
        clips = requests.get(f"{localhost}/api/v1/clips", timeout=10)
        assert clips.json()["count"] == 6
        stream = requests.get(f"{localhost}/api/v1/clips/1/stream", timeout=10)
        audio = tmp_path / "media" / "samples" / "ambient.mp3"
        assert stream.content == audio.read_bytes()  # nginx sent it
        # Prometheus asks the app for app:8000; nginx does not serve it.
        metrics = requests.get(
            f"{app.url}/metrics", headers={"Host": "app:8000"}, timeout=10
        )
        assert metrics.status_code == 200
        assert requests.get(f"{localhost}/metrics", timeout=10).status_code == 404
        # With DEBUG=0 the cookies are Secure. Browsers still send them to
        # http://localhost (Chromium does, checked); requests would not, so by hand.
        login = f"{localhost}/admin/login/"
        csrf_token = requests.get(login, timeout=10).cookies["csrftoken"]
        signed_in = requests.post(
            login,
            data={
                "username": "admin",
                "password": "pw",
                "next": "/admin/",
                "csrfmiddlewaretoken": csrf_token,
            },
            headers={"Cookie": f"csrftoken={csrf_token}"},
            allow_redirects=False,
            timeout=10,
        )
        assert signed_in.status_code == 302, signed_in.text
        assert signed_in.headers["Location"] == "/admin/"
        session = signed_in.cookies["sessionid"]
        admin = requests.get(
            f"{localhost}/admin/",
            headers={"Cookie": f"sessionid={session}"},
            timeout=10,
        )
        assert "Site administration" in admin.text


def test_the_ingest_worker_shares_the_apps_broker_media_and_database(resolved):
    services = resolved["services"]
    worker, app = services["worker"], services["app"]
    assert worker["command"][:4] == ["celery", "-A", "clips_project", "worker"]
    assert worker["environment"]["REDIS_URL"] == app["environment"]["REDIS_URL"]
    for name in ("POSTGRES_USER", "POSTGRES_DB"):
        assert worker["environment"][name] == app["environment"][name]
    assert worker["volumes"] == app["volumes"]  # media, as compose resolves it
    assert not published_ports(worker)
    # Its metrics: the pool's processes summed, in a directory of the worker's own.
    assert worker["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in app["environment"]
