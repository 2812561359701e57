"""The release as it ships: a venv of the runtime lock alone (requirements.txt, no
test tools), started as the image and compose start it. A package that the app
imports but only the test tools brought along fails here, not in production.

gunicorn with clips_project/gunicorn.py (DEBUG=0) and the Celery worker on the
local Redis, on a database of the suite's kind, after compose's own `migrate`
command; the image's and compose's health checks run as written.
"""

import json
import re
import shlex
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import requests

from clips.tests.audio import tone
from clips.tests.system.compose import project_copy, resolve
from clips.tests.system.servers import (
    DEV_BIN,
    Process,
    celery_beat,
    celery_worker,
    clip_ingested,
    database_of_its_own,
    gunicorn,
    runtime_venv,
    site_env,
)
from clips.tests.tools import BASE_DIR, redis_env, require_tool

# What the image's python can find on its PATH: the venv's scripts and a shell.
IMAGE_SYSTEM_TOOLS = {"sh"}


class Release(NamedTuple):
    bin: Path  # the runtime venv's executables
    env: dict[str, str]  # production settings, the runtime venv first on PATH
    app: Process
    worker: Process

    def run(self, command: list[str], **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            cwd=BASE_DIR,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def manage(self, *arguments: str) -> subprocess.CompletedProcess:
        return self.run([str(self.bin / "python"), "manage.py", *arguments])


@pytest.fixture(scope="module")
def runtime_bin() -> Path:
    return runtime_venv()


@pytest.fixture(scope="module")
def compose_resolved(tmp_path_factory) -> dict:
    """docker-compose.yml resolved, with only the services built from the project
    (the image of the Dockerfile at its root) under "services"."""
    project = project_copy(tmp_path_factory.mktemp("compose-release"))
    services = resolve(project)["services"]
    return {
        "services": {
            name: service
            for name, service in services.items()
            if Path(service.get("build", {}).get("context", "/")) == project
        }
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory, runtime_bin, compose_resolved) -> Iterator[Release]:
    workdir = tmp_path_factory.mktemp("release")
    with (
        database_of_its_own(workdir) as database_url,
        redis_env() as broker,
    ):
        env = {
            **site_env(workdir),
            **broker,
            "DATABASE_URL": database_url,
            "STATIC_ROOT": str(workdir / "static"),
            # loaddata ingests the samples, as compose's migrate does.
            "CLIPS_SAMPLES_INGEST": "1",
            "SECRET_KEY": "release-" + "k3y-" * 12,
            "PATH": f"{runtime_bin}:{site_env(workdir)['PATH']}",
            "VIRTUAL_ENV": str(runtime_bin.parent),
        }
        migrate = compose_resolved["services"]["migrate"]["command"]
        made = subprocess.run(
            shlex.split(migrate) if isinstance(migrate, str) else migrate,
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        with (
            gunicorn(workdir, workers=2, extra_env=env, bin_dir=runtime_bin) as app,
            celery_worker(workdir, extra_env=env, bin_dir=runtime_bin) as worker,
            celery_beat(workdir, extra_env=env, bin_dir=runtime_bin),
        ):
            yield Release(runtime_bin, env, app, worker)


def test_the_runtime_lock_installs_alone_with_consistent_dependencies(runtime_bin):
    checked = subprocess.run(
        [runtime_bin / "python", "-m", "pip", "check"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout
    installed = subprocess.run(
        [runtime_bin / "python", "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {package["name"].lower() for package in json.loads(installed.stdout)}
    assert not names & {"pytest", "factory-boy", "moto", "ruff", "schemathesis"}


def locked(lock: Path) -> dict[str, str]:
    """name -> version of every package a lock pins."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock.read_text(), re.MULTILINE)
    return {name.lower(): version for name, version in pins}


def test_the_dev_lock_pins_every_runtime_package_at_the_runtime_version():
    runtime = locked(BASE_DIR / "requirements.txt")
    assert runtime.items() <= locked(BASE_DIR / "requirements-dev.txt").items()
    checked = subprocess.run(
        [DEV_BIN / "python", "-m", "pip", "check"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout


def test_every_module_of_the_app_imports_from_the_runtime_venv(runtime_bin, tmp_path):
    """Also the code no request below reaches: S3 storage, commands, migrations."""
    script = """
import pkgutil, django, importlib
django.setup()
import clips, clips_project
skip = ("clips.tests", "clips_project.test_settings", "clips.sample_audio.__main__")
for package in (clips, clips_project):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not module.name.startswith(skip):
            importlib.import_module(module.name)
print("imported")
"""
    env = site_env(tmp_path) | {"AWS_STORAGE_BUCKET_NAME": "release-check"}
    imported = subprocess.run(
        [runtime_bin / "python", "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert imported.stdout.strip() == "imported", imported.stderr


def test_the_image_and_compose_health_checks_pass(release, compose_resolved):
    bind = {"GUNICORN_BIND": release.app.url.removeprefix("http://")}
    image_check = dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1]
    app_check = compose_resolved["services"]["app"]["healthcheck"]["test"]
    for command in (shlex.split(image_check), app_check[1:]):
        probed = release.run(command, **bind)
        assert probed.returncode == 0, (command, probed.stdout, probed.stderr)
    assert {
        path: requests.get(release.app.url + path, timeout=10).status_code
        for path in ("/healthz", "/readyz")
    } == {"/healthz": 200, "/readyz": 200}


def test_the_worker_answers_compose_s_health_check(release, compose_resolved):
    check = compose_resolved["services"]["worker"]["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    # `compose config` prints $ as $$, as compose files write it.
    shell = check[1].replace("$$", "$")
    pinged = release.run(["sh", "-c", shell], HOSTNAME=socket.gethostname())
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    assert "pong" in pinged.stdout


def test_the_catalogue_lists_the_six_samples_ready(release):
    listed = requests.get(f"{release.app.url}/api/v1/clips", timeout=10).json()
    assert listed["count"] == 6
    assert {clip["status"] for clip in listed["results"]} == {"ready"}


def test_a_sample_streams_audio_that_ffprobe_decodes(release, tmp_path):
    ffprobe = require_tool("ffprobe", package="ffmpeg")
    streamed = requests.get(f"{release.app.url}/api/v1/clips/1/stream", timeout=30)
    assert streamed.status_code == 200
    assert streamed.headers["Content-Type"] == "audio/mpeg"
    (tmp_path / "sample.mp3").write_bytes(streamed.content)
    probe = subprocess.run(
        [
            *(ffprobe, "-v", "error", "-count_frames", "-of", "json"),
            *("-show_entries", "stream=codec_name,nb_read_frames", "sample.mp3"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stderr == ""
    (stream,) = json.loads(probe.stdout)["streams"]
    assert stream["codec_name"] == "mp3"
    assert int(stream["nb_read_frames"]) > 100


def test_a_curator_s_upload_ends_ready_through_the_worker(release):
    made = release.manage("create_curator", "release-curator")
    assert made.returncode == 0, made.stderr
    headers = {"Authorization": f"Token {made.stdout.strip()}"}
    created = requests.post(
        f"{release.app.url}/api/v1/clips",
        headers=headers,
        data={"title": "Release take", "genre": "ambient", "duration": "3"},
        files={"audio_file": ("take.wav", tone("wav", seconds=3), "audio/wav")},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    clip = created.json()
    clip = clip_ingested(release.app.url, clip, headers=headers)
    assert clip["status"] == "ready", (clip, release.worker.error_text()[-3000:])
    preview = requests.get(clip["stream_url"], timeout=10)
    assert (preview.status_code, preview.headers["Content-Type"]) == (
        200,
        "audio/mpeg",
    )


def test_check_deploy_finds_no_errors(release):
    checked = release.manage("check", "--deploy", "--fail-level", "ERROR")
    assert checked.returncode == 0, checked.stderr
    assert "ERROR" not in checked.stderr


def test_every_management_command_the_docs_name_loads(release):
    """README.md and docs/ name them; each must exist in the runtime venv."""
    documents = [BASE_DIR / "README.md", *sorted((BASE_DIR / "docs").glob("*.md"))]
    text = "\n".join(document.read_text() for document in documents)
    named = set(re.findall(r"manage\.py (\w+)", text))
    assert {"create_curator", "ingest", "sweep_files", "loaddata"} <= named
    for command in sorted(named):
        helped = release.manage(command, "--help")
        assert helped.returncode == 0, (command, helped.stderr)


def dockerfile_instruction(name: str) -> str:
    """The last `name` instruction of the Dockerfile, continuation lines joined."""
    text = (BASE_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    return re.findall(rf"^{name} (.+)$", text, re.MULTILINE)[-1]


def shell_words(command: str) -> list[str]:
    """The first word of each command of a `sh -c` line (split at && || ; |)."""
    return [
        shlex.split(part)[0]
        for part in re.split(r"&&|\|\||;|\|", command)
        if part.strip()
    ]


def executables(command: list[str] | str | None) -> list[str]:
    """What a compose command, entrypoint or health check runs first."""
    if not command:
        return []
    words = shlex.split(command) if isinstance(command, str) else command
    if words[0] == "CMD-SHELL":
        return shell_words(words[1])
    if words[0] == "CMD":
        words = words[1:]
    if words[:2] == ["sh", "-c"]:
        return shell_words(words[2])
    return words[:1]


def test_compose_and_the_image_run_only_what_the_runtime_venv_has(
    runtime_bin, compose_resolved
):
    built = compose_resolved["services"]
    assert built.keys() == {"migrate", "app", "worker", "beat"}
    run = {
        word
        for service in built.values()
        for field in (
            service.get("command"),
            service.get("entrypoint"),
            service.get("healthcheck", {}).get("test"),
        )
        for word in executables(field)
    }
    run |= set(json.loads(dockerfile_instruction("CMD"))[:1])
    run |= set(shlex.split(dockerfile_instruction("HEALTHCHECK").split(" CMD ")[1])[:1])
    missing = {
        word for word in run - IMAGE_SYSTEM_TOOLS if not (runtime_bin / word).exists()
    }
    assert run >= {"python", "gunicorn", "celery"}
    assert not missing
