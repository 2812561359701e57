"""Signing in to the admin: failed passwords lock the client's address out for a
while (django-axes), whichever username they tried; API tokens are unaffected."""

import datetime
import time

import pytest
from axes.models import AccessAttempt, AccessLog
from django.test import Client

from clips.services import curator_create

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "correct horse battery staple"
ADDRESS = "192.0.2.10"


def curator_with(username: str):
    user, _ = curator_create(username=username)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def curator_with_password(db):
    return curator_with("alice")


@pytest.fixture
def other_curator(db):
    return curator_with("bob")


def sign_in(username: str, password: str, **headers) -> tuple[int, Client]:
    """A POST of the admin's login form from a new browser; its status, and the
    browser (signed in or not)."""
    client = Client()
    headers.setdefault("REMOTE_ADDR", ADDRESS)
    response = client.post(
        f"{LOGIN}?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        **headers,
    )
    return response, client


def fail(times: int, username: str = "alice", **headers) -> list[int]:
    return [sign_in(username, "wrong", **headers)[0].status_code for _ in range(times)]


def test_four_wrong_passwords_still_let_the_right_one_in(curator_with_password):
    assert fail(4) == [200] * 4
    response, client = sign_in("alice", PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_after_five_wrong_passwords_the_right_one_is_refused(curator_with_password):
    assert fail(5) == [200] * 4 + [429]
    response, client = sign_in("alice", PASSWORD)
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302  # to the login page


def test_the_lockout_says_when_to_try_again(curator_with_password):
    fail(5)
    response, _ = sign_in("alice", PASSWORD)
    assert "Too many failed logins; try again in 15 minutes." in response.text
    assert response["Retry-After"] == "900"


def test_the_same_username_from_another_address_still_signs_in(
    curator_with_password,
):
    fail(5)
    response, _ = sign_in("alice", PASSWORD, REMOTE_ADDR="198.51.100.20")
    assert response.status_code == 302


def test_another_username_from_a_locked_out_address_is_refused_too(
    curator_with_password, other_curator
):
    # Trying one password on many usernames is a guess as good as many passwords.
    fail(5)
    response, _ = sign_in("bob", PASSWORD)
    assert response.status_code == 429


def test_after_the_cool_off_the_right_password_signs_in_again(
    curator_with_password, settings
):
    settings.AXES_COOLOFF_TIME = datetime.timedelta(seconds=1)
    fail(5)
    assert sign_in("alice", PASSWORD)[0].status_code == 429
    time.sleep(1.1)
    assert sign_in("alice", PASSWORD)[0].status_code == 302


def test_behind_a_proxy_each_forwarded_address_is_locked_out_alone(
    curator_with_password, settings
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    fail(5, HTTP_X_FORWARDED_FOR="203.0.113.5")
    locked, _ = sign_in("alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5")
    other, _ = sign_in("alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert (locked.status_code, other.status_code) == (429, 302)


def test_a_forged_forwarded_for_does_not_escape_the_lockout(curator_with_password):
    for n in range(5):
        fail(1, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response, _ = sign_in("alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code == 429


def test_a_locked_out_curators_api_token_still_works(curator_with_password):
    fail(5)
    _, token = curator_create(username="alice")
    response = Client().post(
        "/api/v1/clips",
        {
            "title": "Still here",
            "genre": "jazz",
            "duration": 3,
            "audio_url": "https://audio.example.com/still.mp3",
        },
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
        REMOTE_ADDR=ADDRESS,
    )
    assert response.status_code == 201


def test_no_address_is_stored_for_sign_ins(curator_with_password):
    fail(5, REMOTE_ADDR="203.0.113.77")
    sign_in("alice", PASSWORD, REMOTE_ADDR="198.51.100.20")
    attempts = AccessAttempt.objects.values_list("ip_address", "post_data")
    assert len(attempts) == 1
    assert all("203.0.113" not in f"{value}" for row in attempts for value in row)
    assert not AccessLog.objects.exists()
