"""Test settings: the real ones, with a throwaway key and no TLS redirect."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-not-a-secret")
# The suite's SQLite half (`DATABASE_URL=`, no POSTGRES_*) names its database, since
# the settings fall back to SQLite only with DEBUG=1; pytest-django keeps it in memory.
if not os.environ.get("DATABASE_URL") and not any(
    value for name, value in os.environ.items() if name.startswith("POSTGRES_")
):
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(__file__).parents[1] / 'db.sqlite3'}"

from clips_project.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests see every write at once; test_api.py covers the catalogue cache itself.
CLIPS_LIST_CACHE_SECONDS = 0
# The suite's own process keeps local memory whatever REDIS_URL says: conftest clears
# the cache before each test, which on Redis flushes the whole database. Tests of Redis
# use a key prefix of their own (clips/tests/tools.py: redis_env).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The suite's own process runs tasks eagerly whatever the environment says; the test
# with a real worker (clips/tests/system/test_worker.py) starts one with its own broker.
CELERY_BROKER_URL = ""
CELERY_TASK_ALWAYS_EAGER = True
# Loading the samples ingests nothing (six ingests are some 9 s of CPU); the tests of
# that path (test_samples.py) turn it on.
CLIPS_SAMPLES_INGEST = False
