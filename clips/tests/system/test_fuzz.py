"""The API does what its schema says (schemathesis); Range parsing holds."""

import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from clips.streaming.ranges import ByteRange, RangeNotSatisfiable, parse_range
from clips.tests.factories import AUDIO_BYTES, ClipFactory
from clips.tests.system.servers import gunicorn, shared_database_url, site_env
from clips.tests.tools import BASE_DIR

# Test cases per operation and phase; with the schema's boundaries, about 500 cases
# and 15 s a run on 2 cores. README has the long run (thousands of cases).
EXAMPLES = 15
FUZZ_ENV = {
    "CLIPS_THROTTLE_STREAM": "",  # the fuzzer is faster than any listener
    "CLIPS_THROTTLE_WRITE": "",
    # Added clips may only name localhost, which the SSRF rules never fetch: their
    # streams answer 502 (documented) and no request leaves the machine.
    "CLIPS_ORIGIN_ALLOWED_HOSTS": "localhost",
}


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def site(transactional_db, tmp_path) -> Iterator[tuple[str, str]]:
    """The app as in production (gunicorn, DEBUG=0) with the sample clips and a
    curator: (base URL, the curator's token).

    On PostgreSQL it works on this test's database; an in-memory SQLite database
    cannot be shared, so there it has a SQLite file of its own.
    """
    env = site_env(tmp_path) | FUZZ_ENV
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = shared_database_url()
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "loaddata", "sample_clips", "-v0")
    token = manage(env, "create_curator", "fuzzer").strip()
    with gunicorn(tmp_path, workers=2, extra_env=env) as app:
        yield app.url, token


def schemathesis_run(url: str, *options: str) -> subprocess.Popen:
    """README's command, from the repository root (so schemathesis.toml applies)."""
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json"),
        *("--checks=all", f"--max-examples={EXAMPLES}", "--no-color"),
        "--generation-database=none",
        *options,
    ]
    return subprocess.Popen(
        command, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_schemathesis_finds_the_api_as_its_schema_says(site):
    """`schemathesis run --checks all` on /openapi.json, anonymous and as a curator.

    Every check schemathesis has: no server errors; statuses, content types,
    headers and bodies as documented; invalid input refused and valid input taken;
    auth enforced where the schema asks for it; what a POST created is there. Its
    phases: the schema's boundaries, random valid and invalid input, and chains of
    calls (a clip added, then read, its stats, its stream).
    """
    url, token = site
    runs = {
        "anonymous": schemathesis_run(url),
        "curator": schemathesis_run(url, f"--header=Authorization: Token {token}"),
    }
    for caller, run in runs.items():
        output = run.communicate(timeout=600)[0].decode(errors="replace")
        assert run.returncode == 0, f"{caller}:\n{output[-30_000:]}"


@given(header=st.text(max_size=60), size=st.integers(min_value=0, max_value=10**12))
def test_parse_range_answers_a_range_inside_the_file_or_refuses(header, size):
    try:
        byte_range = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if byte_range is not None:
        assert 0 <= byte_range.start <= byte_range.end < size


range_headers = st.one_of(
    st.text(max_size=40),
    st.builds(
        "bytes={}-{}".format,
        st.one_of(st.just(""), st.integers(0, 20_000).map(str)),
        st.one_of(st.just(""), st.integers(0, 20_000).map(str)),
    ),
)


@pytest.mark.django_db
@given(header=range_headers)
@settings_(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_range_header_gets_exactly_the_bytes_it_announces(client, settings, header):
    settings.CLIPS_THROTTLE_RATES = {}
    clip = ClipFactory()
    response = client.get(f"/api/v1/clips/{clip.pk}/stream", HTTP_RANGE=header)
    if response.status_code == 416:
        assert response["Content-Range"] == f"bytes */{len(AUDIO_BYTES)}"
        return
    body = b"".join(response.streaming_content)
    expected = ByteRange(0, len(AUDIO_BYTES) - 1)
    if response.status_code == 206:
        first, last = response["Content-Range"].split()[1].split("/")[0].split("-")
        expected = ByteRange(int(first), int(last))
    else:
        assert response.status_code == 200
    assert body == AUDIO_BYTES[expected.start : expected.end + 1]
    assert response["Content-Length"] == str(len(body))
