"""A clip's previews through the API: what it lists, PATCHing the start, Opus."""

import pytest
from django.core.management import call_command

from clips.ingest import outbox
from clips.models import Clip, Rendition, RenditionName
from clips.tests.audio import sections
from clips.tests.factories import ingested_clip, stream_url

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clips"


@pytest.fixture
def clip():
    return ingested_clip(sections([(40, -30), (30, -6), (20, -30)]))


def test_a_clip_lists_its_previews_and_its_loudness(client, clip):
    body = client.get(f"{LIST_URL}/{clip.pk}").json()
    assert body["preview_start"] is None
    assert body["preview"] == {
        "start": 40.0,
        "duration": 30.0,
        "chosen_by": "loudness",
        "rendering": False,
    }
    assert body["loudness_lufs"] == clip.loudness_lufs < -5  # a chord at -6 dBFS
    assert body["true_peak_dbtp"] == clip.true_peak_dbtp
    opus, mp3 = body["renditions"]
    assert opus["format"] == "opus" and mp3["format"] == "preview"
    assert (opus["codec"], opus["bit_rate"]) == ("opus", 96_000)
    assert (mp3["codec"], mp3["bit_rate"], mp3["content_type"]) == (
        "mp3",
        128_000,
        "audio/mpeg",
    )
    for rendition in (opus, mp3):
        assert rendition["loudness_lufs"] == pytest.approx(-16, abs=1)
        assert rendition["true_peak_dbtp"] <= -1
        assert rendition["stream_url"].endswith(
            f"{stream_url(clip)}?format={rendition['format']}"
        )
        streamed = client.get(rendition["stream_url"], HTTP_RANGE="bytes=0-99")
        assert streamed.status_code == 206
        assert streamed["Content-Type"] == rendition["content_type"]
        assert streamed["Content-Range"] == f"bytes 0-99/{rendition['size_bytes']}"


def test_an_opus_stream_answers_etags_and_ranges_as_any(client, clip):
    url = f"{stream_url(clip)}?format=opus"
    first = client.get(url)
    assert first.status_code == 200
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert client.get(url, HTTP_RANGE="bytes=999999999-").status_code == 416


def test_a_clip_without_an_opus_preview_says_so(client, clip):
    Rendition.objects.filter(clip=clip, name=RenditionName.OPUS).delete()
    response = client.get(f"{stream_url(clip)}?format=opus")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_unknown_format_names_the_known_ones(client, clip):
    response = client.get(f"{stream_url(clip)}?format=flac")
    assert response.status_code == 400
    assert (
        response.json()["detail"] == "format must be one of: preview, opus, original."
    )


def test_a_curator_sets_the_start_and_the_previews_are_rendered_again(
    curator_client, clip, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = curator_client.patch(
            f"{LIST_URL}/{clip.pk}",
            {"preview_start": 12.5},
            content_type="application/json",
        )
    assert response.status_code == 200
    clip.refresh_from_db()
    assert (clip.preview_start, clip.preview_owed) == (12.5, False)
    body = curator_client.get(f"{LIST_URL}/{clip.pk}").json()
    assert body["preview"] == {
        "start": 12.5,
        "duration": 30.0,
        "chosen_by": "curator",
        "rendering": False,
    }
    with django_capture_on_commit_callbacks(execute=True):
        curator_client.patch(
            f"{LIST_URL}/{clip.pk}",
            {"preview_start": None},
            content_type="application/json",
        )
    body = curator_client.get(f"{LIST_URL}/{clip.pk}").json()
    assert body["preview"] == {
        "start": 40.0,
        "duration": 30.0,
        "chosen_by": "loudness",
        "rendering": False,
    }


def test_until_its_render_is_done_the_preview_is_the_one_served(curator_client, clip):
    response = curator_client.patch(
        f"{LIST_URL}/{clip.pk}",
        {"preview_start": 12.5},
        content_type="application/json",
    )  # the render is queued on commit, which this test never reaches
    assert response.json()["preview_start"] == 12.5
    assert response.json()["preview"] == {
        "start": 40.0,
        "duration": 30.0,
        "chosen_by": "loudness",
        "rendering": True,
    }


def test_a_title_change_renders_nothing(
    curator_client, clip, django_capture_on_commit_callbacks
):
    before = set(clip.renditions.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = curator_client.patch(
            f"{LIST_URL}/{clip.pk}",
            {"title": "Renamed"},
            content_type="application/json",
        )
    assert response.json()["title"] == "Renamed"
    assert not Clip.objects.get(pk=clip.pk).preview_owed
    assert set(clip.renditions.values_list("pk", flat=True)) == before


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (90, "The preview must start before the clip's end (90 s)."),
        (-1, "Ensure this value is greater than or equal to 0."),
        ("soon", "A valid number is required."),
    ],
)
def test_a_start_outside_the_clip_is_a_400(curator_client, clip, start, message):
    response = curator_client.patch(
        f"{LIST_URL}/{clip.pk}",
        {"preview_start": start},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"preview_start": [message]}


def test_a_change_comes_as_json(curator_client, clip):
    response = curator_client.patch(
        f"{LIST_URL}/{clip.pk}",
        "preview_start=5",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_listeners_may_not_patch(client, clip):
    response = client.patch(
        f"{LIST_URL}/{clip.pk}", {"preview_start": 1}, content_type="application/json"
    )
    assert response.status_code == 401


def test_a_render_the_broker_never_took_is_queued_again_by_the_outbox(
    curator_client, clip, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        "clips.tasks.clip_ingest_queue", lambda *, clip_id: queued.append(clip_id)
    )
    curator_client.patch(
        f"{LIST_URL}/{clip.pk}", {"preview_start": 5}, content_type="application/json"
    )
    assert Clip.objects.get(pk=clip.pk).preview_owed
    later = Clip.objects.get(pk=clip.pk).updated_at + outbox.datetime.timedelta(hours=1)
    assert outbox.clips_owed(now=later) == [clip.pk]


def test_render_previews_renders_only_what_today_s_settings_would_change(
    clip, settings, capsys
):
    call_command("render_previews")
    assert "0 clips' previews rendered" in capsys.readouterr().out
    settings.CLIPS_PREVIEW_LUFS = -20
    call_command("render_previews")
    out, err = capsys.readouterr()
    assert "1 clips' previews rendered" in out
    assert "[##############################] 1/1" in err
    for rendition in Rendition.objects.filter(name__in=["opus", "preview"]):
        assert rendition.loudness_lufs == pytest.approx(-20, abs=1)
