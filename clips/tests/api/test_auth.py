import pytest
from django.core.management import call_command
from django.test import Client

from clips.models import Clip
from clips.tests.factories import ClipFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"
PAYLOAD = {
    "title": "Harbour Bells",
    "genre": "ambient",
    "duration": 12.5,
    "audio_url": "https://audio.example.com/bells.mp3",
}


def post(client: Client, **headers):
    return client.post(LIST_URL, PAYLOAD, content_type="application/json", **headers)


def test_anonymous_write_is_401_json_with_a_token_challenge(client):
    response = post(client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["code"] == "not_authenticated"
    assert not Clip.objects.exists()


def test_user_without_the_add_permission_is_403_json():
    client = Client()
    client.force_login(UserFactory())
    response = post(client)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_bad_token_is_401(client):
    response = post(client, HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_curator_with_a_token_adds_a_clip(client, capsys):
    call_command("create_curator", "alice")
    token = capsys.readouterr().out.strip()
    response = post(client, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 201
    assert Clip.objects.filter(title="Harbour Bells").exists()


def test_create_curator_is_idempotent_and_keeps_the_token(capsys):
    call_command("create_curator", "bob")
    first = capsys.readouterr().out.strip()
    call_command("create_curator", "bob")
    assert capsys.readouterr().out.strip() == first


def test_session_writes_need_a_csrf_token(curator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    response = post(client)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    ["", "/{id}", "/{id}/stats", "/{id}/stream"],
    ids=["list", "detail", "stats", "stream"],
)
def test_reading_and_streaming_are_public(client, path):
    clip = ClipFactory()
    response = client.get(LIST_URL + path.format(id=clip.pk))
    assert response.status_code == 200


def test_curators_cannot_delete_through_the_api(curator_client):
    clip = ClipFactory()
    response = curator_client.delete(f"{LIST_URL}/{clip.pk}")
    assert response.status_code == 403
    assert Clip.objects.filter(pk=clip.pk).exists()
