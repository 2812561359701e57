"""Production settings, migrations and what is (not) served."""

import hashlib
import os
import subprocess
import sys

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from clips.ingest import pipeline
from clips.ingest.analysis import PEAKS_SUMMARY_BUCKETS
from clips.models import Clip, ClipStatus, RenditionName
from clips.tests.audio import tone
from clips.tests.factories import AUDIO_BYTES, ClipFactory
from clips.tests.system.servers import gunicorn, site_create

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "clips_project.settings",
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "clips.example.com",
    "DATABASE_URL": "sqlite:///:memory:",
    "PATH": os.environ.get("PATH", ""),
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_worker_metrics_endpoint_without_a_multiprocess_dir_refuses_to_start():
    """Its pool's processes count the tasks: the endpoint would show zeros."""
    env = {**PRODUCTION_ENV, "WORKER_METRICS_BIND": "127.0.0.1:9808"}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "WORKER_METRICS_BIND needs PROMETHEUS_MULTIPROC_DIR" in result.stderr


@pytest.mark.django_db
def test_media_is_not_served_directly(client):
    clip = ClipFactory()
    response = client.get(f"/media/{clip.audio_file.name}")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_migrations_are_reversible():
    call_command("migrate", "clips", "zero", verbosity=0)
    assert "clips_clip" not in connection.introspection.table_names()
    call_command("migrate", verbosity=0)
    assert "clips_clip" in connection.introspection.table_names()
    executor = MigrationExecutor(connection)
    assert not executor.migration_plan(executor.loader.graph.leaf_nodes())


def test_no_model_changes_lack_a_migration():
    result = manage(
        "makemigrations", "--check", "--dry-run", env=PRODUCTION_ENV | {"DEBUG": "1"}
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_gives_stored_audio_its_digest():
    clip = ClipFactory()
    Clip.objects.filter(pk=clip.pk).update(audio_digest="")  # as before 0005
    call_command("migrate", "clips", "0005", verbosity=0)
    call_command("migrate", "clips", verbosity=0)
    clip.refresh_from_db()
    assert clip.audio_digest == hashlib.sha256(AUDIO_BYTES).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_summarises_each_stored_waveform_on_its_row():
    clip = ClipFactory(audio_file__data=tone("wav"), status=ClipStatus.PENDING)
    pipeline.clip_ingest(clip_id=clip.pk)
    waveform = clip.renditions.get(name=RenditionName.WAVEFORM)
    expected = waveform.peaks
    call_command("migrate", "clips", "0008", verbosity=0)
    call_command("migrate", "clips", verbosity=0)
    waveform.refresh_from_db()
    assert waveform.peaks == expected
    assert len(expected) == 2 * PEAKS_SUMMARY_BUCKETS


def test_gunicorn_takes_a_request_line_of_8_kb(tmp_path):
    """Not its own HTML 414: the line reaches the app (which ignores `pad`)."""
    site_create(tmp_path)
    with gunicorn(tmp_path, workers=1) as app:
        path = "/api/v1/clips?pad=" + "a" * 8000
        assert len(f"GET {path} HTTP/1.1") <= 8190
        response = requests.get(app.url + path, timeout=30)
    assert response.status_code == 200
    assert response.json()["count"] == 6
