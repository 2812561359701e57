"""The database from the environment: DATABASE_URL, POSTGRES_*, or SQLite in DEBUG.

Each case imports the real settings in a fresh interpreter with only the chosen
variables set, as a container or `manage.py` would start.
"""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

POSTGRES = {
    "POSTGRES_SERVER": "db",
    "POSTGRES_USER": "clips",
    "POSTGRES_PASSWORD": "secret",
    "POSTGRES_DB": "clips_db",
    "POSTGRES_PORT": "5433",
}
# Every character a URL would need quoted, and those libpq's conninfo quotes.
SPECIAL_PASSWORD = "p@ss:w/rd?#&=%20 'quote' \"dq\" \\slash;$HOME"
# The database settings, and for PostgreSQL the libpq connection string psycopg
# builds from them, parsed back.
SHOW_DATABASE = """
import json, django
from django.db import connection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
django.setup()
shown = dict(connection.settings_dict)
if connection.vendor == "postgresql":
    params = connection.get_connection_params()
    libpq = {key: params[key] for key in ("host", "port", "dbname", "user", "password")
             if key in params}
    shown["psycopg"] = conninfo_to_dict(make_conninfo(**libpq))
print(json.dumps(shown, default=str))
"""
SHOW_SERVER = """
import json, django
from django.db import connection
django.setup()
with connection.cursor() as cursor:
    cursor.execute("SELECT current_database(), current_user, inet_server_port()")
    print(json.dumps(cursor.fetchone()))
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "clips_project.settings",
            "SECRET_KEY": "database-settings-test-only",
            "DEBUG": "0",
            **env,
        },
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def database_settings(**env: str) -> dict:
    result = run_python(SHOW_DATABASE, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def start_up_error(**env: str) -> str:
    result = run_python(SHOW_DATABASE, **env)
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_the_postgres_variables_configure_postgresql():
    database = database_settings(**POSTGRES)
    assert database["ENGINE"] == "django_prometheus.db.backends.postgresql"
    assert (database["HOST"], database["PORT"]) == ("db", 5433)
    assert (database["NAME"], database["USER"]) == ("clips_db", "clips")
    assert database["PASSWORD"] == "secret"
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True


def test_postgres_port_defaults_to_5432():
    env = {name: value for name, value in POSTGRES.items() if name != "POSTGRES_PORT"}
    assert database_settings(**env)["PORT"] == 5432


def test_postgres_password_may_be_empty_for_trust_or_pgpass():
    database = database_settings(**POSTGRES | {"POSTGRES_PASSWORD": ""})
    assert database["PASSWORD"] == ""
    assert "password" not in database["psycopg"]


def test_a_password_with_special_characters_reaches_psycopg_unchanged():
    database = database_settings(**POSTGRES | {"POSTGRES_PASSWORD": SPECIAL_PASSWORD})
    assert database["PASSWORD"] == SPECIAL_PASSWORD
    assert database["psycopg"]["password"] == SPECIAL_PASSWORD
    assert database["psycopg"]["host"] == "db"


def test_database_url_wins_over_the_postgres_variables():
    url = "postgres://other:pw@elsewhere:6543/other_db"
    database = database_settings(
        **POSTGRES, DATABASE_URL=url, DATABASE_CONN_MAX_AGE="5"
    )
    assert database["ENGINE"] == "django_prometheus.db.backends.postgresql"
    assert (database["HOST"], database["PORT"]) == ("elsewhere", 6543)
    assert (database["NAME"], database["USER"]) == ("other_db", "other")
    assert database["CONN_MAX_AGE"] == 5
    assert database["CONN_HEALTH_CHECKS"] is True


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (["POSTGRES_PASSWORD"], "POSTGRES_SERVER, POSTGRES_USER, POSTGRES_DB"),
        (["POSTGRES_SERVER", "POSTGRES_USER", "POSTGRES_PASSWORD"], "POSTGRES_DB"),
        (["POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PORT"], "POSTGRES_SERVER"),
    ],
    ids=["password only", "no database name", "no server"],
)
def test_an_incomplete_postgres_set_fails_naming_what_is_missing(given, missing):
    error = start_up_error(**{name: POSTGRES[name] for name in given})
    assert f"{missing} must be set along with the other POSTGRES_* variables" in error
    assert f"(set: {', '.join(given)})" in error


def test_without_a_database_production_refuses_to_start_naming_the_variables():
    error = start_up_error()
    assert "No database configured: set DATABASE_URL, or POSTGRES_SERVER" in error
    assert "only with DEBUG=1" in error


def test_empty_variables_count_as_unset():
    error = start_up_error(DATABASE_URL="", **dict.fromkeys(POSTGRES, ""))
    assert "No database configured" in error


def test_without_a_database_development_uses_the_sqlite_file():
    database = database_settings(DEBUG="1")
    assert database["ENGINE"] == "django_prometheus.db.backends.sqlite3"
    assert database["NAME"] == str(settings.BASE_DIR / "db.sqlite3")
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_postgres_variables_reach_a_real_server():
    """The suite's own PostgreSQL, named the way the service description does."""
    ours = connection.settings_dict
    result = run_python(
        SHOW_SERVER,
        POSTGRES_SERVER=ours["HOST"],
        POSTGRES_PORT=str(ours["PORT"]),
        POSTGRES_USER=ours["USER"],
        POSTGRES_PASSWORD=ours["PASSWORD"] or "",
        POSTGRES_DB=ours["NAME"],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [ours["NAME"], ours["USER"], int(ours["PORT"])]
