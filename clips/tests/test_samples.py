"""The six sample clips: `migrate` and `loaddata sample_clips` alone make them play."""

import json
import subprocess
from pathlib import Path

import av
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.forms.models import model_to_dict

from clips import tasks
from clips.ingest.analysis import PEAKS_SUMMARY_BUCKETS
from clips.models import Clip, ClipStatus, Genre, RenditionName
from clips.plays import play_record
from clips.sample_audio import SHIPPED
from clips.sample_audio.mp3 import BIT_RATE, decoded_seconds
from clips.sample_audio.pieces import render
from clips.selectors import clip_stats
from clips.services import sample_audio_install
from clips.tests.factories import ClipFactory
from clips.tests.tools import require_tool

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "sample_clips.json"
MIN_SECONDS = 20
SHIPPED_SET_MAX_BYTES = 3_000_000


def fixture_fields() -> dict[str, dict]:
    """The fixture's clips by audio file name."""
    rows = json.loads(FIXTURE.read_text())
    return {row["fields"]["audio_file"]: row["fields"] for row in rows}


@pytest.fixture
def samples(media_root) -> list[Clip]:
    assert not media_root.exists()  # nothing there before loaddata
    call_command("loaddata", "sample_clips", verbosity=0)
    return list(Clip.objects.order_by("pk"))


def streamed(client, clip: Clip) -> tuple[str, bytes]:
    """The clip's whole stream: its Content-Type and body."""
    response = client.get(f"/api/v1/clips/{clip.pk}/stream")
    assert response.status_code == 200, clip
    return response["Content-Type"], b"".join(response.streaming_content)


def test_loaddata_alone_gives_six_clips_one_of_each_genre(samples):
    assert {clip.genre for clip in samples} == {
        Genre.AMBIENT,
        Genre.ELECTRONIC,
        Genre.ACOUSTIC,
        Genre.FIELD_RECORDING,
        Genre.JAZZ,
        Genre.TECH_HOUSE,
    }
    assert len(samples) == 6


def test_every_sample_streams_audio_of_its_stated_type_and_length(client, samples):
    for clip in samples:
        content_type, body = streamed(client, clip)
        assert content_type == clip.content_type == "audio/mpeg"
        assert decoded_seconds(body) == pytest.approx(clip.duration, abs=0.5), clip
        assert clip.duration >= MIN_SECONDS


def test_list_and_detail_size_bytes_equal_the_bytes_streamed(client, samples):
    listed = {row["id"]: row for row in client.get("/api/v1/clips").json()["results"]}
    for clip in samples:
        detail = client.get(f"/api/v1/clips/{clip.pk}").json()
        _, body = streamed(client, clip)
        assert listed[clip.pk]["size_bytes"] == detail["size_bytes"] == len(body)


def test_each_sample_streams_a_range_for_seeking(client, samples):
    for clip in samples:
        response = client.get(
            f"/api/v1/clips/{clip.pk}/stream", HTTP_RANGE="bytes=200000-200099"
        )
        assert response.status_code == 206
        assert len(b"".join(response.streaming_content)) == 100


def test_reloading_changes_nothing_and_keeps_plays(samples, media_root):
    play_record(clip=samples[0], listener="anon:test")
    files = sorted((media_root / "samples").iterdir())
    written = [path.stat().st_mtime_ns for path in files]

    call_command("loaddata", "sample_clips", verbosity=0)

    reloaded = list(Clip.objects.order_by("pk"))
    assert [model_to_dict(c) for c in reloaded] == [model_to_dict(c) for c in samples]
    assert clip_stats(clip=samples[0]).play_count == 1
    assert sorted((media_root / "samples").iterdir()) == files
    assert [path.stat().st_mtime_ns for path in files] == written


def ingests_of(hooks: list) -> list:
    """The ingests among what ran on commit (the stream's facts are forgotten too)."""
    return [
        hook for hook in hooks if getattr(hook, "func", None) is tasks.clip_ingest_here
    ]


def test_loaddata_runs_each_sample_through_the_ingest_once(
    settings, client, django_capture_on_commit_callbacks
):
    settings.CLIPS_SAMPLES_INGEST = True  # as make run has it
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        call_command("loaddata", "sample_clips", verbosity=0)
    assert len(ingests_of(hooks)) == 6
    samples = list(Clip.objects.order_by("pk"))
    stated = fixture_fields()
    for clip in samples:
        assert clip.status == ClipStatus.READY, clip.failure_reason
        assert clip.ingested_at is not None
        assert clip.duration == stated[clip.audio_file.name]["duration"]  # measured
        waveform = clip.renditions.get(name=RenditionName.WAVEFORM)
        assert len(waveform.peaks) == 2 * PEAKS_SUMMARY_BUCKETS
        assert clip.renditions.filter(name=RenditionName.PREVIEW).exists()
    assert client.get("/").content.decode().count('<svg class="waveform"') == 6

    with django_capture_on_commit_callbacks(execute=True) as hooks:
        call_command("loaddata", "sample_clips", verbosity=0)
    assert ingests_of(hooks) == []  # ingested already: `make run` again starts at once
    reloaded = list(Clip.objects.order_by("pk"))
    assert [model_to_dict(c) for c in reloaded] == [model_to_dict(c) for c in samples]


def test_the_samples_are_not_ingested_when_told_not_to(
    settings, django_capture_on_commit_callbacks
):
    settings.CLIPS_SAMPLES_INGEST = False
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        call_command("loaddata", "sample_clips", verbosity=0)
    assert ingests_of(hooks) == []
    assert Clip.objects.filter(status=ClipStatus.READY).count() == 6


def test_the_copy_is_skipped_when_the_storage_has_the_file(media_root):
    default_storage.save("samples/rain.mp3", ContentFile(b"a curator's own take"))
    call_command("loaddata", "sample_clips", verbosity=0)
    rain = Clip.objects.get(audio_file="samples/rain.mp3")
    assert sample_audio_install(clip=rain) is False
    assert (media_root / "samples" / "rain.mp3").read_bytes() == b"a curator's own take"
    assert len(list((media_root / "samples").iterdir())) == 6


def test_a_sample_clip_created_in_code_gets_its_audio():
    Clip.objects.create(
        title="Blue Corner again",
        genre=Genre.JAZZ,
        duration=27.5,
        audio_file="samples/jazz-piano.mp3",
    )
    with default_storage.open("samples/jazz-piano.mp3") as stored:
        assert stored.read() == SHIPPED["samples/jazz-piano.mp3"].read_bytes()


def test_a_clip_with_its_own_audio_copies_no_sample():
    clip = ClipFactory()
    assert sample_audio_install(clip=clip) is False
    assert not default_storage.exists("samples")


def test_the_fixture_names_exactly_the_shipped_files_with_their_sizes():
    fields = fixture_fields()
    assert set(fields) == set(SHIPPED)
    for name, path in SHIPPED.items():
        assert fields[name]["size_bytes"] == path.stat().st_size, name


def test_shipped_samples_are_small_cbr_mp3s_at_44_1_khz():
    for path in SHIPPED.values():
        with av.open(str(path)) as container:
            (stream,) = container.streams.audio
            assert container.format.name == "mp3"
            assert (stream.codec_context.name, stream.rate) == ("mp3float", 44_100)
            assert stream.bit_rate == BIT_RATE, path.name
    total = sum(path.stat().st_size for path in SHIPPED.values())
    assert total <= SHIPPED_SET_MAX_BYTES


def test_ffprobe_decodes_every_streamed_sample(client, samples, tmp_path):
    ffprobe = require_tool("ffprobe", package="ffmpeg")
    for clip in samples:
        _, body = streamed(client, clip)
        path = tmp_path / f"{clip.pk}.mp3"
        path.write_bytes(body)
        probe = subprocess.run(
            [
                ffprobe,
                *("-v", "error", "-count_frames", "-of", "json"),
                *("-show_entries", "format=format_name,duration:stream=nb_read_frames"),
                str(path),
            ],
            capture_output=True,
            check=True,
            text=True,
        )
        assert probe.stderr == "", clip  # no decoding errors
        result = json.loads(probe.stdout)
        assert result["format"]["format_name"] == "mp3"
        assert float(result["format"]["duration"]) == pytest.approx(
            clip.duration, abs=0.5
        )
        assert int(result["streams"][0]["nb_read_frames"]) > 0


def test_the_generator_rebuilds_a_sample_of_its_stated_length():
    stated = fixture_fields()["samples/tech-house.mp3"]["duration"]
    data = render("tech-house")
    assert decoded_seconds(data) == pytest.approx(stated, abs=0.05)
    assert len(data) == pytest.approx(
        SHIPPED["samples/tech-house.mp3"].stat().st_size, rel=0.01
    )
