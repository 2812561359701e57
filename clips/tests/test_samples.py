import io
import wave

import pytest
from django.core.management import call_command

from clips.models import Clip, Genre
from clips.plays import play_record
from clips.sample_audio import SAMPLES
from clips.selectors import clip_stats

pytestmark = pytest.mark.django_db


@pytest.fixture
def samples(media_root):
    call_command("load_samples", verbosity=0)
    return Clip.objects.order_by("pk")


def test_six_sample_clips_load_with_one_of_each_genre(samples):
    assert samples.count() == 6
    assert {clip.genre for clip in samples} == {
        Genre.AMBIENT,
        Genre.ELECTRONIC,
        Genre.ACOUSTIC,
        Genre.FIELD_RECORDING,
        Genre.JAZZ,
        Genre.TECH_HOUSE,
    }


def test_sample_audio_is_real_wav_matching_the_fixture(samples):
    for clip in samples:
        data = clip.audio_file.read()
        clip.audio_file.close()
        assert len(data) == clip.size_bytes
        with wave.open(io.BytesIO(data)) as wav:
            seconds = wav.getnframes() / wav.getframerate()
            frames = wav.readframes(wav.getnframes())
        assert seconds == pytest.approx(clip.duration, abs=0.01)
        assert max(frames) > 0  # not silence


def test_each_sample_streams_a_range(client, samples):
    for clip in samples:
        response = client.get(
            f"/api/v1/clips/{clip.pk}/stream", HTTP_RANGE="bytes=0-99"
        )
        assert response.status_code == 206
        assert response["Content-Type"] == "audio/wav"
        assert len(b"".join(response.streaming_content)) == 100


def test_loading_twice_neither_duplicates_nor_resets_plays(samples):
    play_record(clip=samples[0], listener="anon:test")
    call_command("load_samples", verbosity=0)
    assert Clip.objects.count() == 6
    assert clip_stats(clip=samples[0]).play_count == 1


def test_loaddata_alone_loads_the_fixture(media_root):
    call_command("loaddata", "sample_clips", verbosity=0)
    assert Clip.objects.count() == 6


def test_sample_synthesis_is_deterministic():
    from clips.sample_audio import render_wav

    synthesise = SAMPLES["rain.wav"]
    assert render_wav(synthesise()) == render_wav(synthesise())
