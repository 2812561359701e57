"""clips.ingest.analysis: probe, loudness, energy and peaks of real audio made by the
tests; the previews of any source (clips.ingest.preview)."""

import json
import math
import re
import struct
import subprocess
import wave
from pathlib import Path

import pytest

from clips.ingest import analysis, preview
from clips.tests.audio import FORMATS, decoded, tone
from clips.tests.tools import require_tool

EXPECTED = {
    "wav": ("wav", "pcm_s16le", "audio/wav", 44_100),
    "mp3": ("mp3", "mp3", "audio/mpeg", 44_100),
    "ogg": ("ogg", "opus", "audio/ogg", 48_000),
    "flac": ("flac", "flac", "audio/flac", 44_100),
}


EBUR128 = ["-af", "ebur128=peak=true", "-f", "null", "-"]


def tone_samples(*, seconds: float, rate: int) -> bytes:
    """A 440 Hz tone at half scale, 16-bit little-endian mono PCM."""
    return b"".join(
        struct.pack("<h", round(16_000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(round(seconds * rate))
    )


def written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("extension", FORMATS)
def test_each_format_is_probed_by_decoding_it(tmp_path, extension):
    path = written(tmp_path, f"take.{extension}", tone(extension, seconds=2.5))
    facts = analysis.analyse(path).facts
    assert facts.duration == pytest.approx(2.5, abs=0.03)
    container, codec, content_type, rate = EXPECTED[extension]
    assert (facts.container, facts.codec, facts.content_type) == (
        container,
        codec,
        content_type,
    )
    assert (facts.sample_rate, facts.channels) == (rate, 2)
    assert facts.bit_rate > 0


def test_the_content_type_comes_from_the_bytes_not_the_name(tmp_path):
    facts = analysis.analyse(written(tmp_path, "evil.mp3", tone("wav"))).facts
    assert facts.content_type == "audio/wav"


def previewed_whole(source: Path, *, seconds: float, work: Path) -> list:
    """The previews of a clip no longer than an excerpt: the whole of it."""
    whole = preview.Excerpt(start=0, duration=seconds)
    return preview.preview_render(
        source, excerpt=whole, length=seconds, target_lufs=-16, work=work
    )


@pytest.mark.parametrize("extension", FORMATS)
def test_each_format_gets_both_previews_of_its_whole_length(tmp_path, extension):
    """A clip shorter than the excerpt is previewed whole, from any container."""
    source = written(tmp_path, f"take.{extension}", tone(extension, seconds=3))
    rendered = previewed_whole(source, seconds=3, work=tmp_path)
    assert [each.format for each in rendered] == [preview.MP3, preview.OPUS]
    for each in rendered:
        container, seconds = decoded(each.path.read_bytes())
        assert container == {"mp3": "mp3", "opus": "ogg"}[each.format.codec]
        assert seconds == pytest.approx(3, abs=0.06)  # plus the encoder's padding
    mp3 = rendered[0].path
    assert mp3.stat().st_size == pytest.approx(3 * 128_000 / 8, rel=0.1)


@pytest.mark.parametrize("rate", [22_050, 44_100])
def test_a_plain_mono_wav_gets_mono_previews(tmp_path, rate):
    """A WAV of no channel layout, as Python's wave module and most recorders
    write one: its preview failed with EINVAL once (resamplers in the wrong order)."""
    source = tmp_path / "plain.wav"
    with wave.open(str(source), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone_samples(seconds=2, rate=rate))
    facts = analysis.analyse(source).facts
    assert (facts.sample_rate, facts.channels) == (rate, 1)
    rendered = previewed_whole(source, seconds=2, work=tmp_path)
    for each in rendered:
        assert decoded(each.path.read_bytes())[1] == pytest.approx(2, abs=0.06)
        assert analysis.analyse(each.path).facts.channels == 1


def test_loudness_is_measured_as_ffmpeg_measures_it(tmp_path):
    """The same figures as ffmpeg's command line, from the ingest's one decode."""
    path = written(tmp_path, "take.wav", tone("wav", seconds=3))
    ffmpeg = require_tool("ffmpeg", "ffmpeg")
    log = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostats", "-i", str(path), *EBUR128],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = log[log.rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[0-9.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[0-9.]+) dBFS", summary).group(1))
    loudness = analysis.analyse(path).loudness
    assert loudness.lufs == pytest.approx(lufs, abs=0.1)
    assert loudness.true_peak_dbtp == pytest.approx(peak, abs=0.1)


def test_silence_has_no_loudness(tmp_path):
    path = written(tmp_path, "silence.wav", tone("wav", amplitude=0))
    loudness = analysis.analyse(path).loudness
    assert (loudness.lufs, loudness.true_peak_dbtp) == (None, None)


def test_the_energy_follows_the_audio_every_tenth_of_a_second(tmp_path):
    path = written(tmp_path, "take.wav", tone("wav", seconds=2.5))
    energy = analysis.analyse(path).energy
    assert energy.size == 25
    # A sine's mean square is half its peak's square.
    assert energy == pytest.approx((16_000 / 32_768) ** 2 / 2, rel=0.01)


def test_the_waveform_is_audiowaveform_json_with_a_fixed_number_of_buckets(tmp_path):
    waveform = analysis.analyse(written(tmp_path, "a.wav", tone("wav"))).waveform
    data = json.loads(analysis.waveform_dumps(waveform))
    assert data["version"] == 2 and data["channels"] == 1 and data["bits"] == 8
    assert data["length"] == analysis.WAVEFORM_BUCKETS
    assert len(data["data"]) == 2 * analysis.WAVEFORM_BUCKETS
    assert data["samples_per_pixel"] * data["length"] == pytest.approx(88_200, rel=0.01)
    # A tone at half scale: every bucket spans about -64..63 in 8 bits.
    assert min(data["data"]) == pytest.approx(-63, abs=2)
    assert max(data["data"]) == pytest.approx(62, abs=2)


def test_silence_has_a_flat_waveform(tmp_path):
    silent = tone("wav", amplitude=0)
    waveform = analysis.analyse(written(tmp_path, "quiet.wav", silent)).waveform
    assert set(waveform.data) == {0}


TRUNCATED = {
    "wav": "Truncated",
    "mp3": "Truncated",
    "flac": "Not readable as audio",
}


@pytest.mark.parametrize(("extension", "reason"), TRUNCATED.items())
def test_a_truncated_file_is_not_audio(tmp_path, extension, reason):
    data = tone(extension)
    path = written(tmp_path, f"cut.{extension}", data[: len(data) // 2])
    with pytest.raises(analysis.NotAudio, match=reason):
        analysis.analyse(path)


@pytest.mark.parametrize(
    "data", [b"this is not audio\n", b"", b"RIFF\x24\x00\x00\x00WAVE"], ids=repr
)
def test_what_does_not_decode_is_not_audio(tmp_path, data):
    with pytest.raises(analysis.NotAudio, match="Not readable as audio"):
        analysis.analyse(written(tmp_path, "fake.wav", data))


@pytest.fixture(scope="module")
def two_hours_of_silence(tmp_path_factory) -> Path:
    """A small MP3 of a long silence, as ffmpeg makes one: a decompression bomb."""
    ffmpeg = require_tool("ffmpeg", package="ffmpeg")
    path = tmp_path_factory.mktemp("bomb") / "silence.mp3"
    subprocess.run(
        [
            *(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"),
            *("-t", "7200", "-b:a", "8k", str(path)),
        ],
        check=True,
    )
    return path


def test_audio_whose_header_says_it_is_too_long_is_refused_before_decoding(
    two_hours_of_silence,
):
    with pytest.raises(
        analysis.TooLong, match=r"^7200 s long: clips are limited to 3600 s\.$"
    ):
        analysis.analyse(two_hours_of_silence, max_seconds=3600)


def test_decoding_stops_once_the_audio_passes_the_limit(tmp_path):
    """A header's length is an estimate; what decodes past the limit stops there."""
    path = written(tmp_path, "take.wav", tone("wav", seconds=3))
    refused = r"^Longer: clips are limited to 2 s\.$"
    with pytest.raises(analysis.TooLong, match=refused):
        analysis.analyse(path, max_seconds=2)
