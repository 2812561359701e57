"""Test settings: the real ones, with a throwaway key and no TLS redirect."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-a-secret")

from clips_project.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests see every write at once; test_api.py covers the catalogue cache itself.
CLIPS_LIST_CACHE_SECONDS = 0
