"""Bad input through the real servers is answered, in the API's one JSON error shape
under /api/: a JSON body nested too deeply (gunicorn), a body over nginx's limit
(the shipped nginx config in front)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from clips.tests.system import servers
from clips.tests.system.servers import Process, curator_token, site_create

# A curator's 2 GB upload: nginx refuses it from the Content-Length alone.
DECLARED = 2 * 1024**3


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return site_create(tmp_path_factory.mktemp("input"))


@pytest.fixture(scope="module")
def edge(site) -> Iterator[tuple[Process, Process]]:
    """(gunicorn, nginx in front of it)."""
    with servers.edge(site) as running:
        yield running


def post_declaring(url: str, length: int) -> requests.Response:
    """A POST whose Content-Length says `length` bytes, sending none of them."""
    with requests.Session() as session:
        request = requests.Request(
            "POST", url, headers={"Content-Type": "audio/wav"}, data=b""
        ).prepare()
        request.headers["Content-Length"] = str(length)
        return session.send(request, timeout=10)


def test_json_nested_too_deeply_is_400_parse_error_from_gunicorn(site, edge):
    app, _ = edge
    response = requests.post(
        f"{app.url}/api/v1/clips",
        data="[" * 100_000,
        headers={
            "Authorization": f"Token {curator_token(site)}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "parse_error"


def test_an_api_body_over_nginxs_limit_is_413_json(edge):
    _, nginx = edge
    response = post_declaring(f"{nginx.url}/api/v1/clips", DECLARED)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["code"] == "request_too_large"
    assert set(response.json()) == {"code", "detail"}


def test_a_body_over_nginxs_limit_elsewhere_is_nginxs_page(edge):
    _, nginx = edge
    response = post_declaring(f"{nginx.url}/admin/login/", DECLARED)
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")
