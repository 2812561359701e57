"""Bad input never gives a 500: schemathesis on the live schema, hypothesis on Range."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from clips.ranges import ByteRange, RangeNotSatisfiable, parse_range
from clips.tests.factories import AUDIO_BYTES, ClipFactory

EXAMPLES = 40  # per operation; enough to find a 500, small enough for CI
SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.django_db(transaction=True)
def test_api_conforms_to_its_schema_and_never_fails(live_server, settings, curator):
    """Every operation of /api/v1/schema, fuzzed over HTTP against a live server."""
    settings.CLIPS_THROTTLE_RATES = {}  # the fuzzer is faster than any listener
    # Clips the fuzzer adds may only point at a host that is never fetched, so no
    # request leaves the machine (otherwise their streams would answer 502).
    settings.CLIPS_ORIGIN_ALLOWED_HOSTS = ["audio.invalid"]
    ClipFactory.create_batch(3)
    token = Token.objects.get(user=curator).key
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/v1/schema?format=json"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings_(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(
                headers={"Authorization": f"Token {token}"}, checks=SCHEMA_CHECKS
            )

        check()


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
