"""/openapi.json says what the API does (system/test_fuzz.py checks it against
the API)."""

import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from clips.models import Clip
from clips.remote.origin import OriginBlocked, audio_url_regex, check_url
from clips.tests.api.test_api import BIDI_CONTROLS

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    return client.get("/openapi.json").json()


def operation(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][f"/api/v1/clips{path}"][method]


def test_the_schema_has_the_apis_paths_and_no_others(schema):
    assert sorted(schema["paths"]) == [
        "/api/v1/clips",
        "/api/v1/clips/{id}",
        "/api/v1/clips/{id}/listens",
        "/api/v1/clips/{id}/stats",
        "/api/v1/clips/{id}/stream",
        "/api/v1/clips/{id}/waveform",
    ]


@pytest.mark.parametrize("path", ["", "/{id}", "/{id}/stats", "/{id}/stream"])
def test_public_reads_need_no_credentials(schema, path):
    assert {} in operation(schema, "get", path)["security"]


def test_progress_needs_no_credentials_and_comes_as_json_or_text(schema):
    listens = operation(schema, "post", "/{id}/listens")
    assert {} in listens["security"]
    assert set(listens["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert "409" in listens["responses"]


def test_adding_a_clip_needs_credentials(schema):
    assert {} not in operation(schema, "post", "")["security"]


def test_the_lists_parameters_state_their_bounds(schema):
    parameters = {p["name"]: p for p in operation(schema, "get", "")["parameters"]}
    assert parameters["page"]["schema"] == {"type": "integer", "minimum": 1}
    assert parameters["page_size"]["schema"]["maximum"] == 100
    assert parameters["duration_max"]["schema"]["maximum"] == 3600
    assert parameters["search"]["schema"]["anyOf"][0]["maxLength"] == 200
    assert parameters["ordering"]["explode"] is False


def test_the_lists_pages_state_the_cursor_and_an_estimated_count(schema):
    parameters = {p["name"] for p in operation(schema, "get", "")["parameters"]}
    assert {"page", "cursor", "page_size"} <= parameters
    page = operation(schema, "get", "")["responses"]["200"]["content"]
    body = schema["components"]["schemas"][
        page["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert body["properties"]["count_estimated"]["type"] == "boolean"
    assert "count_estimated" in body["required"]


def test_the_list_documents_the_servers_414_for_a_request_line_over_8190_bytes(
    schema,
):
    response = operation(schema, "get", "")["responses"]["414"]
    assert list(response["content"]) == ["text/html"]


def test_adding_a_clip_documents_nginxs_json_413_for_a_body_over_the_limit(schema):
    response = operation(schema, "post", "")["responses"]["413"]
    assert list(response["content"]) == ["application/json"]


def test_adding_a_clip_documents_a_storage_that_fails_or_is_full(schema):
    responses = operation(schema, "post", "")["responses"]
    assert responses["503"]["headers"]["Retry-After"]["required"] is True
    assert "507" in responses


def test_the_stream_documents_every_status_it_answers(schema):
    for method in ("get", "head"):
        responses = operation(schema, method, "/{id}/stream")["responses"]
        assert set(responses) == {
            *("200", "206", "304", "400"),
            *("404", "409", "412", "416", "429", "502"),
        }
        assert responses["206"]["headers"]["Content-Range"]["required"] is True
        assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_the_schema_states_the_audio_url_pattern_the_api_checks(client, settings):
    settings.CLIPS_ORIGIN_ALLOWED_HOSTS = ["cdn.example.com"]
    schema = client.get("/openapi.json").json()
    properties = schema["components"]["schemas"]["ClipInputRequest"]["properties"]
    # The same expression, with ECMA anchors for Python's \A and \Z.
    body = audio_url_regex().removeprefix(r"\A").removesuffix(r"\Z")
    assert properties["audio_url"]["pattern"] == f"^{body}$"
    assert "[cC][dD][nN]" in body


@pytest.mark.parametrize("body", ["ClipInputRequest", "ClipUploadInputRequest"])
@pytest.mark.parametrize("field", ["title", "description"])
def test_the_text_fields_pattern_refuses_nul_and_bidi_controls_as_the_api_does(
    schema, body, field
):
    text = schema["components"]["schemas"][body]["properties"][field]
    pattern = text.get("pattern") or text["anyOf"][0]["pattern"]
    for refused in ["\x00", *BIDI_CONTROLS]:
        assert not re.search(pattern, f"Bells{refused}"), f"U+{ord(refused):04X}"
    assert re.search(pattern, "\u0645\u0637\u0631 \u05d2\u05e9\u05dd rain")


@pytest.mark.parametrize("allowed_hosts", [[], ["localhost", ".cdn.example.com"]])
def test_every_audio_url_the_pattern_allows_is_a_url_the_api_takes(
    settings, allowed_hosts
):
    settings.CLIPS_ORIGIN_ALLOWED_HOSTS = allowed_hosts
    field = Clip._meta.get_field("audio_url")

    @given(url=st.from_regex(audio_url_regex(), fullmatch=True))
    @settings_(max_examples=200, suppress_health_check=list(HealthCheck))
    def check(url):
        if len(url) > field.max_length:
            return  # the schema's maxLength
        try:
            field.run_validators(url)
            check_url(url)
        except (ValidationError, OriginBlocked) as refused:
            raise AssertionError(f"{url!r}: {refused}") from refused

    check()
