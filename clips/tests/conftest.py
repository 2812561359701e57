from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client

from clips.services import curator_create
from clips.tests.tools import tmpfs


def pytest_report_header(config):
    database = django_settings.DATABASES["default"]
    return f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}"


SYSTEM_TESTS = Path(__file__).parent / "system"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.is_relative_to(SYSTEM_TESTS):
            item.add_marker(pytest.mark.system)
    if django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes uploads into its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def full_media_root(settings, tmp_path):
    """MEDIA_ROOT on a 64 KiB disk of its own: a larger file fills it (ENOSPC)."""
    with tmpfs(tmp_path / "full", size="64k") as directory:
        settings.MEDIA_ROOT = directory
        yield directory


@pytest.fixture
def read_only_media_root(settings, tmp_path):
    """MEDIA_ROOT on a disk of its own mounted read-only (EROFS)."""
    with tmpfs(tmp_path / "read-only", size="64k", read_only=True) as directory:
        settings.MEDIA_ROOT = directory
        yield directory


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Rate-limit history lives in the cache; no test inherits another's."""
    cache.clear()


@pytest.fixture
def curator(db):
    user, _ = curator_create(username="curator")
    return user


@pytest.fixture
def curator_client(curator) -> Client:
    client = Client()
    client.force_login(curator)
    return client
