"""The admin's sign-in lockout through the shipped nginx: it keys on the client's
address as nginx saw it (X-Forwarded-For, NUM_PROXIES=1), not on nginx's own, so
one client's failures lock out that client alone."""

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from clips.tests.system.servers import FromAddress, edge, site_create, site_env
from clips.tests.tools import BASE_DIR

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def through_nginx(tmp_path_factory) -> Iterator[str]:
    workdir = site_create(tmp_path_factory.mktemp("admin-login"))
    subprocess.run(
        [
            *(sys.executable, "manage.py", "createsuperuser", "--noinput"),
            *("--username", "admin", "--email", "admin@example.com"),
        ],
        cwd=BASE_DIR,
        env=site_env(workdir) | {"DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )
    with edge(workdir) as (_, server):
        yield server.url


def sign_in(url: str, password: str, address: str) -> requests.Response:
    """The admin's login form, fetched and posted from `address` as a browser would.

    The CSRF cookie is Secure (DEBUG off) and this is plain http, so it is sent by
    hand."""
    with requests.Session() as session:
        session.mount("http://", FromAddress(address))
        page = session.get(f"{url}/admin/login/", timeout=30)
        form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        return session.post(
            f"{url}/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": form_token[1],
                "username": "admin",
                "password": password,
                "next": "/admin/",
            },
            headers={"Cookie": f"csrftoken={page.cookies['csrftoken']}"},
            allow_redirects=False,
            timeout=30,
        )


def test_failed_sign_ins_through_nginx_lock_out_that_client_alone(through_nginx):
    failed = [sign_in(through_nginx, "wrong", "127.44.0.1") for _ in range(5)]
    assert [response.status_code for response in failed] == [200] * 4 + [429]
    assert sign_in(through_nginx, PASSWORD, "127.44.0.1").status_code == 429
    other_client = sign_in(through_nginx, PASSWORD, "127.44.0.2")
    assert other_client.status_code == 302
    assert other_client.headers["Location"] == "/admin/"
