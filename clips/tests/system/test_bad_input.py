"""Bad input through the real servers is answered, in the API's one JSON error shape
under /api/: a JSON body nested too deeply (gunicorn)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from clips.tests.system import servers
from clips.tests.system.servers import Process, curator_token, site_create


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return site_create(tmp_path_factory.mktemp("input"))


@pytest.fixture(scope="module")
def edge(site) -> Iterator[tuple[Process, Process]]:
    """(gunicorn, nginx in front of it)."""
    with servers.edge(site) as running:
        yield running


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
