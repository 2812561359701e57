"""docker-compose.yml as compose itself resolves it, without a Docker engine:
`compose config` on a copy of the project whose .env is the unedited .env.example.
"""

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from clips.tests.tools import BASE_DIR, tool_missing


def compose_command() -> list[str]:
    """The compose plugin, or Debian's docker-compose (v1); `config` needs no engine."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if (
            shutil.which(command[0])
            and not subprocess.run(
                [*command, "version"], capture_output=True, check=False
            ).returncode
        ):
            return command
    tool_missing(
        "needs `docker compose` or `docker-compose` "
        "(Debian package docker-compose; .ci/run installs it)"
    )


def project_copy(parent: Path) -> Path:
    """The project in parent/clips, with the unedited .env.example as its .env."""
    project = parent / "clips"
    shutil.copytree(
        BASE_DIR,
        project,
        ignore=shutil.ignore_patterns(
            ".*", "media", "staticfiles", "__pycache__", "db.sqlite3"
        ),
    )
    shutil.copy(BASE_DIR / ".env.example", project / ".env")
    return project


def compose_config(project: Path, *files: str) -> subprocess.CompletedProcess:
    """`compose config` with no variable from this shell: only the project's .env.

    files: the compose files (-f), if not docker-compose.yml alone.
    """
    return subprocess.run(
        [*compose_command(), *(f"--file={name}" for name in files), "config"],
        cwd=project,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resolve(project: Path, *files: str) -> dict:
    result = compose_config(project, *files)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def published_ports(service: dict) -> set[tuple[str, str]]:
    """(published, target) pairs, from either compose's way of printing ports."""
    pairs = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.add((str(port["published"]), str(port["target"])))
        else:
            *_, published, target = port.split("/")[0].split(":")
            pairs.add((published, target))
    return pairs
