"""Previews as listeners get them: an excerpt at one loudness, MP3 and Ogg Opus.

Real audio made here (quiet and loud parts at known levels), ingested, streamed
through the API and measured by FFmpeg's own ebur128 filter on the command line.
"""

import re
import subprocess

import numpy as np
import pytest

from clips.ingest import pipeline, preview
from clips.models import ClipStatus, RenditionName
from clips.tests.audio import samples_of, sections, wav_of
from clips.tests.factories import ClipFactory, ingested_clip, stream_url
from clips.tests.tools import require_tool

pytestmark = pytest.mark.django_db

TARGET = -16.0
FORMATS = [RenditionName.PREVIEW, RenditionName.OPUS]
MP3_FRAME = 1152  # samples


def streamed(client, clip, audio_format: str, tmp_path) -> bytes:
    response = client.get(f"{stream_url(clip)}?format={audio_format}")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    (tmp_path / audio_format).write_bytes(data)
    return data


def measured_by_ffmpeg(path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP), as ffmpeg's CLI says."""
    ffmpeg = require_tool("ffmpeg", "ffmpeg")
    command = [ffmpeg, "-hide_banner", "-nostats", "-i", str(path)]
    command += ["-af", "ebur128=peak=true", "-f", "null", "-"]
    log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    summary = log[log.rindex("Summary:") :]
    lufs = re.search(r"I:\s+(-?[0-9.]+) LUFS", summary).group(1)
    peak = re.search(r"Peak:\s+(-?[0-9.]+) dBFS", summary).group(1)
    return float(lufs), float(peak)


def clip_of(data: bytes, **fields):
    clip = ClipFactory(audio_file__data=data, status=ClipStatus.PENDING, **fields)
    clip = pipeline.clip_ingest(clip_id=clip.pk)
    assert clip.status == ClipStatus.READY, clip.failure_reason
    return clip


def test_the_default_excerpt_is_the_loud_part(settings):
    settings.CLIPS_PREVIEW_SECONDS = 30
    clip = ingested_clip(sections([(40, -40), (30, -6), (40, -40)]))
    assert clip.loudest_start == pytest.approx(40, abs=0.1)
    for rendition in clip.renditions.filter(name__in=FORMATS):
        assert rendition.excerpt_start == pytest.approx(40, abs=0.1)
        assert rendition.excerpt_duration == 30


def loud_and_spiky() -> bytes:
    """A quiet chord with clicks at full scale: raised to the target, the clicks
    would clip without the limiter."""
    rate = 48_000
    t = np.arange(20 * rate) / rate
    mono = 0.02 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 330 * t))
    mono[:: rate // 2] = 1.0
    return wav_of(mono, rate=rate)


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(sections([(20, -30)]), id="quiet"),
        pytest.param(sections([(20, -0.1)]), id="loud"),
        pytest.param(loud_and_spiky(), id="quiet-with-full-scale-clicks"),
    ],
)
@pytest.mark.parametrize("audio_format", FORMATS)
def test_the_streamed_preview_is_at_the_target_under_the_ceiling(
    client, tmp_path, audio, audio_format
):
    clip = ingested_clip(audio)
    streamed(client, clip, audio_format, tmp_path)
    lufs, peak = measured_by_ffmpeg(tmp_path / audio_format)
    assert lufs == pytest.approx(TARGET, abs=1.0)
    assert peak <= preview.TRUE_PEAK_CEILING_DBTP
    # What the API says is what ffmpeg measures.
    made = clip.renditions.get(name=audio_format)
    assert made.loudness_lufs == pytest.approx(lufs, abs=0.3)
    assert made.true_peak_dbtp == pytest.approx(peak, abs=0.3)


def test_the_original_s_loudness_is_measured(tmp_path):
    audio = sections([(10, -20)])
    (tmp_path / "original.wav").write_bytes(audio)
    lufs, peak = measured_by_ffmpeg(tmp_path / "original.wav")
    clip = ingested_clip(audio)
    assert clip.loudness_lufs == pytest.approx(lufs, abs=0.1)
    assert clip.true_peak_dbtp == pytest.approx(peak, abs=0.1)


@pytest.mark.parametrize("audio_format", FORMATS)
def test_a_curator_s_start_is_honoured_to_within_a_frame(
    client, tmp_path, audio_format
):
    """Silence, then a chord from 50.0 s: a preview from 45 s hears it at 5 s."""
    clip = clip_of(sections([(50, None), (20, -6)]), preview_start=45.0)
    samples, rate = samples_of(streamed(client, clip, audio_format, tmp_path))
    onset = np.argmax(np.abs(samples) > 0.01)
    assert abs(onset - 5 * rate) <= MP3_FRAME * rate / 48_000


@pytest.mark.parametrize("audio_format", FORMATS)
def test_an_excerpt_fades_in_and_out_where_it_cuts_the_original(
    client, tmp_path, audio_format
):
    clip = clip_of(sections([(100, -6)]), preview_start=20.0)
    samples, rate = samples_of(streamed(client, clip, audio_format, tmp_path))

    def rms(start: float, seconds: float = 0.05) -> float:
        part = samples[round(start * rate) : round((start + seconds) * rate)]
        return float(np.sqrt(np.mean(np.square(part))))

    end = samples.size / rate
    assert rms(0.1) < 0.5 * rms(2.0)
    assert rms(end - 0.2) < 0.5 * rms(end - 3.0)


@pytest.mark.parametrize("audio_format", FORMATS)
def test_a_clip_shorter_than_the_excerpt_is_previewed_whole_and_unfaded(
    client, tmp_path, audio_format
):
    clip = ingested_clip(sections([(10, -6)]))
    samples, rate = samples_of(streamed(client, clip, audio_format, tmp_path))
    assert samples.size / rate == pytest.approx(10, abs=0.06)
    full = float(np.sqrt(np.mean(np.square(samples[rate : 2 * rate]))))
    start = samples[round(0.1 * rate) : round(0.15 * rate)]
    assert float(np.sqrt(np.mean(np.square(start)))) == pytest.approx(full, rel=0.2)


@pytest.mark.parametrize(
    ("audio_format", "codec", "content_type", "slack"),
    [
        (RenditionName.PREVIEW, "mp3", "audio/mpeg", 0.06),  # the encoder's padding
        (RenditionName.OPUS, "opus", 'audio/ogg; codecs="opus"', 0.03),
    ],
)
def test_each_preview_decodes_to_the_excerpt_s_length(
    client, tmp_path, audio_format, codec, content_type, slack
):
    clip = ingested_clip(sections([(45, -6)]))
    response = client.get(f"{stream_url(clip)}?format={audio_format}")
    assert response["Content-Type"] == content_type
    samples, rate = samples_of(b"".join(response.streaming_content))
    assert rate == preview.RATE
    assert samples.size / rate == pytest.approx(30, abs=slack)
    made = clip.renditions.get(name=audio_format)
    assert (made.codec, made.excerpt_duration) == (codec, 30)


def test_the_same_audio_renders_the_same_files():
    first = {
        r.name: r.digest for r in ingested_clip(sections([(12, -9)])).renditions.all()
    }
    second = {
        r.name: r.digest for r in ingested_clip(sections([(12, -9)])).renditions.all()
    }
    assert first == second


@pytest.mark.parametrize(
    ("energy", "start"),
    [
        ([1, 1, 9, 9, 1], 0.2),  # the window of the most energy
        ([5, 5, 1, 5, 5], 0.0),  # the first of equals
        ([1, 2], 0.0),  # no longer than the window
    ],
)
def test_the_loudest_window(energy, start):
    found = preview.loudest_start(np.array(energy), block_seconds=0.1, seconds=0.2)
    assert found == pytest.approx(start)


def test_a_start_near_the_end_gives_a_shorter_excerpt():
    excerpt = preview.excerpt_of(length=100, start=90, seconds=30)
    assert (excerpt.start, excerpt.duration) == (90, 10)


def test_the_preview_formats_are_rendition_names():
    assert {each.name for each in preview.FORMATS} <= set(RenditionName.values)
