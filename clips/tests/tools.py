"""What the tests take from this machine: free loopback ports, Debian's tools
(a missing one fails under CI, where .ci/run installs it, and skips elsewhere),
the machine's Redis, under a key prefix of each test's own, and small file systems
of their own (tmpfs, as root).

The processes the system tests start are in clips/tests/system/servers.py.
"""

import os
import random
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import redis

BASE_DIR = Path(__file__).resolve().parents[2]
PORTS = range(18000, 19000)
REDIS_URL = "redis://127.0.0.1:6379/0"


def tool_missing(message: str) -> NoReturn:
    """Skip the test; in CI, where .ci/run installs every tool, fail it."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str, package: str = "prometheus") -> str:
    """Path of a binary from Debian; in CI a missing one fails instead of skipping."""
    path = shutil.which(name)
    if path is None:
        tool_missing(f"needs `{name}` (Debian package {package}; .ci/run installs it)")
    return path


def free_port() -> int:
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 18000-18999")


@contextmanager
def redis_env() -> Iterator[dict[str, str]]:
    """REDIS_URL and a CACHE_KEY_PREFIX of its own, for the app in extra_env.

    Parallel runs share the machine's Redis but never a key, and never flush it;
    the prefix's keys are deleted on exit.
    """
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError:
        client.close()
        tool_missing(
            "needs Redis on 127.0.0.1:6379 (Debian package redis-server; "
            ".ci/run starts it)"
        )
    prefix = f"clips-test-{secrets.token_hex(8)}"
    try:
        yield {"REDIS_URL": REDIS_URL, "CACHE_KEY_PREFIX": prefix}
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


@contextmanager
def tmpfs(directory: Path, *, size: str, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` (mount's -o size=, e.g. 64k) on directory, unmounted on exit.

    A real disk that fills up (ENOSPC) or, read_only, refuses every write (EROFS).
    Mounting needs root: elsewhere the test skips, and fails under CI.
    """
    mount = require_tool("mount", package="mount")
    umount = require_tool("umount", package="mount")
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755"
    mounted = subprocess.run(
        [mount, "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        tool_missing(f"needs to mount a tmpfs (root): {mounted.stderr.strip()}")
    try:
        if read_only:
            remount = [mount, "-o", "remount,ro", str(directory)]
            subprocess.run(remount, check=True, capture_output=True)
        yield directory
    finally:
        subprocess.run([umount, str(directory)], check=True, capture_output=True)
