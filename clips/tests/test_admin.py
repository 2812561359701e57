import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clips.ingest import pipeline
from clips.ingest.analysis import PEAKS_SUMMARY_BUCKETS
from clips.models import Clip, Play
from clips.tests.audio import sections, tone
from clips.tests.factories import (
    AUDIO_BYTES,
    LARGE_AUDIO_BYTES,
    ClipFactory,
    PlayFactory,
    ingested_clip,
)

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/clips/clip/add/"


def form(**overrides) -> dict:
    return {
        "title": "Curated",
        "description": "",
        "genre": "jazz",
        "duration": "4.5",
        "audio_url": "",
    } | overrides


def test_changelist_shows_play_counts_and_filters_by_genre(admin_client):
    ClipFactory(title="Loved", genre="jazz", play_count=42)
    ClipFactory(title="Calm", genre="ambient")
    response = admin_client.get("/admin/clips/clip/", {"genre__exact": "jazz"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert "Loved" in response.text
    assert "42" in response.text


def test_changelist_search(admin_client):
    ClipFactory(title="Harbour", description="gulls")
    ClipFactory(title="Forest")
    response = admin_client.get("/admin/clips/clip/", {"q": "gulls"})
    assert response.context["cl"].result_count == 1


def test_curator_adds_a_clip_by_upload(admin_client):
    upload = SimpleUploadedFile("take.wav", AUDIO_BYTES)
    response = admin_client.post(ADD_URL, form(audio_file=upload))
    assert response.status_code == 302
    clip = Clip.objects.get(title="Curated")
    assert clip.content_type == "audio/wav"
    assert clip.size_bytes == len(AUDIO_BYTES)


def test_curator_adds_a_clip_by_url(admin_client):
    response = admin_client.post(
        ADD_URL, form(audio_url="https://audio.example.com/a.mp3")
    )
    assert response.status_code == 302
    assert Clip.objects.get(title="Curated").is_remote


def test_curator_must_give_one_audio_source(admin_client):
    response = admin_client.post(ADD_URL, form())
    assert response.status_code == 200
    assert "Give exactly one audio source" in response.text
    assert not Clip.objects.exists()


def test_curator_cannot_upload_a_non_audio_file(admin_client):
    upload = SimpleUploadedFile("notes.txt", b"hello")
    response = admin_client.post(ADD_URL, form(audio_file=upload))
    assert response.status_code == 200
    assert not Clip.objects.exists()


@pytest.mark.parametrize("field", ["title", "description"])
def test_curator_cannot_save_text_with_a_bidi_control(admin_client, field):
    response = admin_client.post(
        ADD_URL,
        form(audio_url="https://audio.example.com/a.mp3", **{field: "Bells\u202e"}),
    )
    assert response.status_code == 200
    assert "U+202E" in str(response.context["adminform"].form.errors[field])
    assert not Clip.objects.exists()


@pytest.mark.parametrize(
    ("disk", "said"),
    [
        ("full_media_root", "The storage is full"),
        ("read_only_media_root", "could not be stored right now"),
    ],
)
def test_an_upload_the_disk_cannot_take_is_an_error_on_the_add_page(
    admin_client, request, disk, said
):
    request.getfixturevalue(disk)
    upload = SimpleUploadedFile("take.wav", LARGE_AUDIO_BYTES)
    response = admin_client.post(ADD_URL, form(audio_file=upload), follow=True)
    assert response.redirect_chain == [(ADD_URL, 302)]
    assert said in response.text
    assert not Clip.objects.exists()


def test_change_form_has_an_audio_preview_and_read_only_play_count(admin_client):
    clip = ClipFactory()
    Clip.objects.filter(pk=clip.pk).update(play_count=7)
    response = admin_client.get(f"/admin/clips/clip/{clip.pk}/change/")
    # Not ingested yet: the stream's default, the original.
    assert f'<source src="/api/v1/clips/{clip.pk}/stream">' in response.text
    assert 'name="play_count"' not in response.text
    assert "7" in response.text


def test_saving_in_the_admin_keeps_the_play_count(admin_client):
    clip = ClipFactory(title="Old")
    Clip.objects.filter(pk=clip.pk).update(play_count=7)
    response = admin_client.post(
        f"/admin/clips/clip/{clip.pk}/change/", form(title="New")
    )
    assert response.status_code == 302
    clip.refresh_from_db()
    assert clip.title == "New"
    assert clip.play_count == 7


def test_deleting_a_clip_summarises_its_plays_and_removes_its_statistics(admin_client):
    clip = ClipFactory(title="Gone")
    Clip.objects.filter(pk=clip.pk).update(play_count=3)
    PlayFactory.create_batch(3, clip=clip)
    url = f"/admin/clips/clip/{clip.pk}/delete/"
    page = admin_client.get(url)
    assert "Plays: 3" in page.text
    assert page.text.count("Gone at ") == 0  # no line per play
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Clip.objects.exists()
    assert not Play.objects.exists()


def test_an_upload_in_the_admin_is_ingested_and_its_facts_shown(
    admin_client, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("take.wav", tone("wav", seconds=3))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD_URL, form(audio_file=upload, duration="60"))
    assert response.status_code == 302
    clip = Clip.objects.get(title="Curated")
    assert (clip.status, clip.codec, clip.duration) == ("ready", "pcm_s16le", 3.0)
    page = admin_client.get(f"/admin/clips/clip/{clip.pk}/change/").content.decode()
    assert "pcm_s16le" in page and "44100" in page
    assert 'name="duration"' not in page  # measured: no longer the curator's


def test_changelist_shows_failures_with_their_reason_and_filters_by_status(
    admin_client,
):
    ClipFactory(title="Broken", status="failed", failure_reason="Not audio at all.")
    ClipFactory(title="Fine")
    response = admin_client.get("/admin/clips/clip/", {"status__exact": "failed"})
    page = response.content.decode()
    assert "Broken" in page and "Not audio at all." in page
    assert "Fine" not in page


def test_the_admin_ingests_selected_clips_again(admin_client):
    clip = ClipFactory(audio_file__data=tone("mp3"), status="pending")
    response = admin_client.post(
        "/admin/clips/clip/",
        {"action": "ingest_again", "_selected_action": [clip.pk]},
        follow=True,
    )
    assert "Ingest queued for 1 clip(s)." in response.content.decode()
    clip.refresh_from_db()
    assert (clip.status, clip.codec) == ("ready", "mp3")
    assert clip.renditions.count() == 3  # MP3 and Opus previews, waveform


def waveform_strokes(page: str) -> list[int]:
    """How many buckets each of the page's waveform SVGs draws."""
    paths = re.findall(r'<svg class="waveform".*?<path d="([^"]+)"', page, re.S)
    return [path.count("M") for path in paths]


def test_the_waveform_is_drawn_in_the_list_and_on_the_change_page(admin_client):
    clip = ClipFactory(audio_file__data=tone("wav"), status="pending")
    pipeline.clip_ingest(clip_id=clip.pk)
    ClipFactory()  # not ingested
    changelist = admin_client.get("/admin/clips/clip/").content.decode()
    assert waveform_strokes(changelist) == [PEAKS_SUMMARY_BUCKETS]
    assert 'width="120" height="24"' in changelist
    page = admin_client.get(f"/admin/clips/clip/{clip.pk}/change/").content.decode()
    assert waveform_strokes(page) == [PEAKS_SUMMARY_BUCKETS]
    assert "Drawn once ingested." not in page


def test_a_clip_not_ingested_says_its_waveform_comes_later(admin_client):
    clip = ClipFactory()
    page = admin_client.get(f"/admin/clips/clip/{clip.pk}/change/").content.decode()
    assert "Drawn once ingested." in page
    assert 'class="waveform"' not in page


def test_the_change_page_shows_the_previews_and_takes_a_new_start(
    admin_client, django_capture_on_commit_callbacks
):
    clip = ingested_clip(sections([(20, -30), (40, -6)]))
    url = f"/admin/clips/clip/{clip.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'data-preview-input="id_preview_start"' in page  # a click sets it
    assert "30 s from 20 s (the loudest stretch)" in page
    assert re.search(r"opus: -16\.\d LUFS, true peak -\d+\.\d dBTP", page)
    assert re.search(r"mp3: -1[56]\.\d LUFS", page)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, form(title=clip.title, duration=str(clip.duration), preview_start="5")
        )
    assert response.status_code == 302
    page = admin_client.get(url).content.decode()
    assert "30 s from 5 s (chosen)" in page


def test_the_admin_renders_again_only_previews_today_s_settings_change(
    admin_client, django_capture_on_commit_callbacks
):
    clips = [ingested_clip(sections([(8, -9)])) for _ in "ab"]
    Clip.objects.filter(pk=clips[0].pk).update(preview_start=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/clips/clip/",
            {"action": "previews_render", "_selected_action": [c.pk for c in clips]},
            follow=True,
        )
    assert "Previews to render again: 1 of 2 clip(s)" in response.content.decode()
    excerpt = clips[0].renditions.get(name="opus")
    assert (excerpt.excerpt_start, excerpt.excerpt_duration) == (2, 6)
