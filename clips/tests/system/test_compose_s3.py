"""docker-compose.s3.yml: compose's audio in MinIO, checked without a Docker engine
(`compose config` on both files, with .env.example's object storage lines on)."""

import re

import pytest

from clips.tests.system.compose import (
    project_copy,
    published_ports,
    resolve,
)
from clips.tests.tools import BASE_DIR

FILES = ("docker-compose.yml", "docker-compose.s3.yml")
USERS = ("migrate", "app", "worker")


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """.env.example's object storage lines, uncommented, as a user would."""
    text = (BASE_DIR / ".env.example").read_text()
    return dict(re.findall(r"^#(AWS_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory, env_example) -> dict:
    project = project_copy(tmp_path_factory.mktemp("compose-s3"))
    env = project / ".env"
    text = env.read_text()
    env.write_text(re.sub(r"^#(AWS_)", r"\1", text, flags=re.MULTILINE))
    return resolve(project, *FILES)["services"]


def test_the_app_its_worker_and_migrate_use_the_bucket_once_it_exists(
    resolved, env_example
):
    for name in USERS:
        environment = resolved[name]["environment"]
        assert environment["AWS_S3_ENDPOINT_URL"] == "http://s3:9000", name
        for variable in ("AWS_STORAGE_BUCKET_NAME", "AWS_ACCESS_KEY_ID"):
            assert environment[variable] == env_example[variable], name
        assert resolved[name]["depends_on"]["s3-bucket"] == {
            "condition": "service_completed_successfully"
        }


def test_minio_runs_with_the_apps_credentials_and_publishes_nothing(
    resolved, env_example
):
    minio = resolved["s3"]["environment"]
    assert minio["MINIO_ROOT_USER"] == env_example["AWS_ACCESS_KEY_ID"]
    assert minio["MINIO_ROOT_PASSWORD"] == env_example["AWS_SECRET_ACCESS_KEY"]
    for name in ("s3", "s3-bucket"):
        assert not published_ports(resolved[name]), name
    assert "mc mb --ignore-existing" in resolved["s3-bucket"]["entrypoint"]


def test_nginx_resolves_the_bucket_with_dockers_dns(resolved):
    assert resolved["nginx"]["environment"]["CLIPS_RESOLVER"] == "127.0.0.11"
