"""/healthz, /readyz and what requests get while the database cannot be reached.

An unreachable database is a real one: the default database's settings are pointed
at a closed port on 127.0.0.1 (PostgreSQL) or at a file SQLite cannot open, for
every thread. The same through gunicorn: test_health_gunicorn.py.
"""

import logging

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from clips import selectors
from clips.models import Listen
from clips.ops.health import RETRY_AFTER_SECONDS
from clips.tests.factories import ClipFactory
from clips.tests.tools import free_port


def unavailable_count() -> float:
    return REGISTRY.get_sample_value("clips_database_unavailable_total") or 0.0


@pytest.fixture
def database_unreachable(db, monkeypatch, tmp_path):
    """Every new connection to the default database fails, in every thread.

    The readiness checks connect from threads of their own, so the shared settings
    change; this thread's connection (the test's transaction) is put aside and
    comes back afterwards.
    """
    unreachable = {
        "postgresql": {"HOST": "127.0.0.1", "PORT": str(free_port())},
        "sqlite": {"NAME": str(tmp_path / "no-such-directory" / "db.sqlite3")},
    }[connection.vendor]
    original = connections["default"]
    for key, value in unreachable.items():
        monkeypatch.setitem(original.settings_dict, key, value)
    connections["default"] = connections.create_connection("default")
    yield
    connections["default"].close()
    connections["default"] = original


@pytest.fixture
def failing_client() -> Client:
    """A client that gets the 500 page instead of the view's exception."""
    return Client(raise_request_exception=False)


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: pytest-django fails any query this test would make.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_readyz_answers_ok_when_database_and_storage_work(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage": "ok"},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_plain_http_from_any_host_with_the_ssl_redirect_on(
    client, settings, path
):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["clips.example.com"]
    response = client.get(path, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    # Everything else is still redirected, and refused for a host not allowed.
    assert client.get("/api/v1/clips", HTTP_HOST="clips.example.com").status_code == 301
    assert client.get("/api/v1/clips", HTTP_HOST="10.1.2.3:8000").status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_not_rate_limited(client, settings, path):
    settings.CLIPS_THROTTLE_RATES = {"stream": "1/hour", "clip_write": "1/hour"}
    statuses = {client.get(path).status_code for _ in range(5)}
    assert statuses == {200}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_only_get_and_head(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(
    client, database_unreachable, caplog
):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["detail"] == "Not ready: database."
    assert body["checks"]["storage"] == "ok"
    assert body["checks"]["database"].startswith("Unavailable: ")
    (record,) = caplog.records  # one line, and no traceback
    assert record.getMessage().startswith("Not ready: /readyz: database: ")
    assert record.exc_info is None


@pytest.mark.django_db
def test_readyz_is_503_naming_storage_when_media_root_is_unreadable(
    client, settings, tmp_path, caplog
):
    # Not a directory: unreadable even for root, who ignores permission bits.
    settings.MEDIA_ROOT = tmp_path / "a-file"
    settings.MEDIA_ROOT.write_text("")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["detail"] == "Not ready: storage."
    assert body["checks"] == {
        "database": "ok",
        "storage": "Unavailable: Not a directory",
    }
    (record,) = caplog.records
    assert record.exc_info is None


def test_healthz_still_answers_while_the_database_cannot_be_reached(
    client, database_unreachable
):
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/clips",
        "/api/v1/clips/1",
        "/api/v1/clips/1/stats",
        "/api/v1/clips/1/stream",
    ],
)
def test_the_api_answers_503_json_with_retry_after_while_the_database_is_down(
    client, database_unreachable, caplog, path
):
    before = unavailable_count()
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {
        "code": "database_unavailable",
        "detail": "The database is unavailable; try again shortly.",
    }
    assert unavailable_count() == before + 1
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(f"Database unavailable: GET {path}: ")
    assert "\n" not in record.getMessage()
    assert record.exc_info is None


def test_a_curators_write_answers_503_json_while_the_database_is_down(
    client, database_unreachable
):
    response = client.post(
        "/api/v1/clips",
        {"title": "New Clip"},
        content_type="application/json",
        HTTP_AUTHORIZATION="Token 0123456789abcdef",
    )
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


@pytest.mark.parametrize("path", ["/", "/clips/1/"])
def test_pages_answer_a_short_503_page_while_the_database_is_down(
    client, database_unreachable, caplog, path
):
    response = client.get(path)
    assert response.status_code == 503
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert b"<h1>Temporarily unavailable</h1>" in response.content
    (record,) = caplog.records
    assert record.exc_info is None


@pytest.mark.django_db
def test_an_integrity_error_is_still_a_500_with_its_traceback(
    failing_client, monkeypatch, caplog
):
    clip = ClipFactory()
    Listen.objects.create(clip=clip, listener="a", started_at=timezone.now())

    def clip_get_with_a_bug(*, clip_id, user=None):
        # A second open listen of one listener and clip.
        Listen.objects.create(clip=clip, listener="a", started_at=timezone.now())

    monkeypatch.setattr(selectors, "clip_get", clip_get_with_a_bug)
    before = unavailable_count()
    response = failing_client.get(f"/api/v1/clips/{clip.pk}/stream")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert unavailable_count() == before
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.ERROR
    assert record.exc_info[0].__name__ == "IntegrityError"


@pytest.mark.django_db(transaction=True)
def test_an_operational_error_on_a_working_connection_is_still_a_500(
    failing_client, monkeypatch, caplog
):
    """A statement timeout (PostgreSQL) or a missing table (SQLite) is a bug."""

    def clip_get_with_a_bug(*, clip_id, user=None):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET statement_timeout = 1")
                try:
                    cursor.execute("SELECT pg_sleep(1)")
                finally:
                    cursor.execute("RESET statement_timeout")
            else:
                cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(selectors, "clip_get", clip_get_with_a_bug)
    response = failing_client.get("/api/v1/clips/1/stream")
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info[0].__name__ == "OperationalError"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_request_answers_503(client):
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        killer.close()
    try:
        response = client.get("/api/v1/clips")
    finally:
        connection.close()  # the test client does not close it as a server does
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
