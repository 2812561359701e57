"""The probes and a database outage through gunicorn with production settings.

The container health checks are run as Docker and compose run them: their own
command lines, read from the Dockerfile and docker-compose.yml. The outage is a
PostgreSQL that refuses connections (a closed port on 127.0.0.1), so the shared
server keeps running for everybody else.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from clips.tests.system.servers import Process, gunicorn
from clips.tests.tools import BASE_DIR, free_port

PRODUCTION_BEHIND_TLS = {
    "SECURE_SSL_REDIRECT": "1",
    # Not the address the probes ask: they must not need it.
    "ALLOWED_HOSTS": "clips.example.com",
}


def dockerfile_healthcheck() -> list[str]:
    """The Dockerfile's HEALTHCHECK command, as Docker runs it."""
    text = (BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    (instruction,) = [
        line for line in text.splitlines() if line.startswith("HEALTHCHECK")
    ]
    command = instruction.split(" CMD ", 1)[1].strip()
    return json.loads(command) if command.startswith("[") else ["sh", "-c", command]


def compose_healthcheck() -> list[str]:
    """The compose app service's healthcheck test, as compose runs it."""
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    kind, *command = compose["services"]["app"]["healthcheck"]["test"]
    return command if kind == "CMD" else ["sh", "-c", *command]


def run_in_container_of(app: Process, command: list[str]) -> int:
    """Run command as inside the app's container: its working directory, its
    GUNICORN_BIND, and `python` the interpreter the app runs on."""
    env = {
        **os.environ,
        "GUNICORN_BIND": app.url.removeprefix("http://"),
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
    }
    result = subprocess.run(
        command, cwd=BASE_DIR, env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


@pytest.fixture(scope="module")
def behind_tls(tmp_path_factory) -> Process:
    workdir = tmp_path_factory.mktemp("behind-tls")
    with gunicorn(workdir, workers=1, extra_env=PRODUCTION_BEHIND_TLS) as app:
        yield app


def test_the_dockerfile_healthcheck_passes_with_the_ssl_redirect_on(behind_tls):
    assert dockerfile_healthcheck()[-1].endswith("/healthz")
    assert run_in_container_of(behind_tls, dockerfile_healthcheck()) == 0


def test_the_compose_healthcheck_passes_with_the_ssl_redirect_on(behind_tls):
    assert compose_healthcheck()[-1].endswith("/readyz")
    assert run_in_container_of(behind_tls, compose_healthcheck()) == 0


def test_that_server_redirects_everything_else_to_https(behind_tls):
    response = requests.get(
        f"{behind_tls.url}/api/v1/clips",
        headers={"Host": "clips.example.com"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 301
    assert response.headers["Location"] == "https://clips.example.com/api/v1/clips"


# What is asked of the app while its database refuses connections.
API = ["/api/v1/clips", "/api/v1/clips/1", "/api/v1/clips/1/stats"]
STREAM = "/api/v1/clips/1/stream"
PAGES = ["/", "/clips/1/"]


@dataclass
class Outage:
    app: Process
    responses: dict[str, requests.Response]
    log_lines: list[str]  # stderr while the requests were answered

    def unavailable_total(self) -> float:
        text = requests.get(f"{self.app.url}/metrics", timeout=10).text
        (family,) = [
            family
            for family in text_string_to_metric_families(text)
            if family.name == "clips_database_unavailable"
        ]
        (sample,) = [s for s in family.samples if s.name.endswith("_total")]
        return sample.value


@pytest.fixture(scope="module")
def outage(tmp_path_factory) -> Outage:
    workdir = tmp_path_factory.mktemp("outage")
    refused = f"postgres://postgres@127.0.0.1:{free_port()}/clips"
    with gunicorn(workdir, workers=1, extra_env={"DATABASE_URL": refused}) as app:
        requests.get(f"{app.url}/healthz", timeout=10).raise_for_status()
        logged_before = len(app.error_text().splitlines())
        responses = {
            path: requests.get(f"{app.url}{path}", timeout=10)
            for path in [*API, STREAM, *PAGES, "/healthz", "/readyz"]
        }
        responses["POST /api/v1/clips"] = requests.post(
            f"{app.url}/api/v1/clips",
            json={"title": "New Clip"},
            headers={"Authorization": "Token 0123456789abcdef"},
            timeout=10,
        )
        log_lines = app.error_text().splitlines()[logged_before:]
        yield Outage(app=app, responses=responses, log_lines=log_lines)


@pytest.mark.parametrize("path", [*API, STREAM, "POST /api/v1/clips"])
def test_the_api_answers_503_json_with_retry_after(outage, path):
    response = outage.responses[path]
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_unavailable"


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_a_short_html_503(outage, path):
    response = outage.responses[path]
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Temporarily unavailable" in response.text


def test_healthz_answers_and_readyz_names_the_database(outage):
    assert outage.responses["/healthz"].status_code == 200
    readyz = outage.responses["/readyz"]
    assert readyz.status_code == 503
    assert readyz.json()["code"] == "not_ready"
    assert readyz.json()["checks"]["storage"] == "ok"
    assert readyz.json()["checks"]["database"] != "ok"


def test_each_failed_request_logs_exactly_one_line(outage):
    failed = [
        path for path, response in outage.responses.items() if response.ok is False
    ]
    assert len(outage.log_lines) == len(failed), outage.log_lines
    for line in outage.log_lines:
        assert line.startswith(("Database unavailable: ", "Not ready: ")), line
    assert "Traceback" not in "\n".join(outage.log_lines)


def test_the_metric_counts_each_request_answered_503(outage):
    answered_503 = [
        path
        for path, response in outage.responses.items()
        if response.status_code == 503 and path != "/readyz"
    ]
    assert outage.unavailable_total() == len(answered_503)


def test_the_compose_healthcheck_fails_and_the_images_passes(outage):
    assert run_in_container_of(outage.app, compose_healthcheck()) == 1
    assert run_in_container_of(outage.app, dockerfile_healthcheck()) == 0
