"""CORS: any origin may read the public API; only listed origins may write."""

import pytest

from clips.services import curator_create
from clips.tests.factories import AUDIO_BYTES, ClipFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"
PLAYER = "https://player.example.org"
CURATORS = "https://curators.example.com"
EXPOSED = "Content-Range, Accept-Ranges, Content-Length, ETag, Location, Retry-After"
PUBLIC_READS = {
    "list": "/api/v1/clips",
    "detail": "/api/v1/clips/{id}",
    "stats": "/api/v1/clips/{id}/stats",
    "stream": "/api/v1/clips/{id}/stream",
    "schema": "/openapi.json",
}
CLIP_BODY = {
    "title": "New Clip",
    "description": "A description for the new clip",
    "genre": "electronic",
    "duration": 30.5,
    "audio_url": "https://example.com/path/to/audio.mp3",
}


def cors_headers(response) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def varies_on_origin(response) -> bool:
    vary = response.headers.get("Vary", "")
    return "origin" in {part.strip().lower() for part in vary.split(",")}


def preflight(client, path: str, *, origin: str, method: str, headers=()):
    request_headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = ",".join(headers)
    return client.options(path, headers=request_headers)


def assert_preflight_allows(response, *, origin: str, method: str, headers) -> None:
    assert response.status_code == 200
    answer = cors_headers(response)
    assert answer["access-control-allow-origin"] == origin
    assert method in answer["access-control-allow-methods"].split(", ")
    assert set(headers) <= set(answer["access-control-allow-headers"].split(", "))
    assert "access-control-allow-credentials" not in answer


def post_clip(client, *, origin: str, token: str):
    return client.post(
        LIST_URL,
        CLIP_BODY,
        content_type="application/json",
        headers={"Origin": origin, "Authorization": f"Token {token}"},
    )


@pytest.fixture
def public_paths() -> dict[str, str]:
    clip = ClipFactory()
    return {name: path.format(id=clip.pk) for name, path in PUBLIC_READS.items()}


@pytest.fixture
def token(db) -> str:
    _, token = curator_create(username="curator")
    return token.key


@pytest.mark.parametrize("method", ["get", "head"])
@pytest.mark.parametrize("name", PUBLIC_READS)
def test_any_origin_reads_the_public_api_without_credentials(
    client, settings, public_paths, name, method
):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = getattr(client, method)(public_paths[name], headers={"Origin": PLAYER})
    assert response.status_code == 200
    assert cors_headers(response) == {
        "access-control-allow-origin": PLAYER,
        "access-control-expose-headers": EXPOSED,
    }
    assert varies_on_origin(response)


def test_a_ranged_stream_exposes_its_content_range_to_any_origin(client):
    clip = ClipFactory()
    response = client.get(
        f"/api/v1/clips/{clip.pk}/stream",
        headers={"Origin": PLAYER, "Range": "bytes=100-199"},
    )
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(AUDIO_BYTES)}"
    assert response["Access-Control-Allow-Origin"] == PLAYER
    assert "Content-Range" in response["Access-Control-Expose-Headers"].split(", ")
    assert "access-control-allow-credentials" not in cors_headers(response)


def test_an_error_of_a_public_read_is_readable_from_any_origin(client):
    response = client.get(f"{LIST_URL}/999999", headers={"Origin": PLAYER})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response["Access-Control-Allow-Origin"] == PLAYER


def test_a_preflight_for_a_ranged_stream_succeeds_from_any_origin(client):
    clip = ClipFactory()
    headers = ("range", "if-range", "if-none-match", "if-modified-since")
    response = preflight(
        client,
        f"/api/v1/clips/{clip.pk}/stream",
        origin=PLAYER,
        method="GET",
        headers=headers,
    )
    assert_preflight_allows(response, origin=PLAYER, method="GET", headers=headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_preflight_for_a_write_from_an_unlisted_origin_is_not_allowed(
    client, settings, method
):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = preflight(
        client,
        LIST_URL,
        origin=PLAYER,
        method=method,
        headers=("authorization", "content-type"),
    )
    assert "access-control-allow-origin" not in cors_headers(response)


def test_no_origin_may_write_by_default(client, settings):
    assert settings.CORS_ALLOWED_ORIGINS == []
    response = preflight(client, LIST_URL, origin=CURATORS, method="POST")
    assert "access-control-allow-origin" not in cors_headers(response)


def test_a_preflight_for_a_post_from_a_listed_origin_allows_the_token(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    headers = ("authorization", "content-type")
    response = preflight(
        client, LIST_URL, origin=CURATORS, method="POST", headers=headers
    )
    assert_preflight_allows(response, origin=CURATORS, method="POST", headers=headers)


def test_a_listed_origin_adds_a_clip_with_a_curators_token(client, settings, token):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = post_clip(client, origin=CURATORS, token=token)
    assert response.status_code == 201
    assert cors_headers(response) == {
        "access-control-allow-origin": CURATORS,
        "access-control-expose-headers": EXPOSED,
    }


def test_a_write_from_an_unlisted_origin_is_not_readable_by_its_page(
    client, settings, token
):
    # A browser never sends it (its preflight fails); a script without a browser
    # is no different from curl, so the token alone decides.
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = post_clip(client, origin=PLAYER, token=token)
    assert "access-control-allow-origin" not in cors_headers(response)


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/docs", "/api/v1/docs"])
def test_pages_outside_the_api_have_no_cors(client, settings, path):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = client.get(path, headers={"Origin": CURATORS})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert not varies_on_origin(response)


def test_a_preflight_outside_the_api_is_not_answered(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [CURATORS]
    response = preflight(client, "/admin/login/", origin=CURATORS, method="POST")
    assert cors_headers(response) == {}
