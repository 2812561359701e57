"""End to end in headless Chromium: press play, let it play, seek; one play counts.
And a page on another origin uses the API as far as CORS lets it.

Needs Debian's chromium and chromium-driver. Without them the test is skipped
locally and fails under CI (CI set), where .ci/run installs them.
Set CLIPS_SCREENSHOT_DIR=docs to refresh the README's screenshots.
"""

import datetime
import io
import json
import math
import os
import random
from pathlib import Path

import av
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from clips.listening import clip_listening
from clips.models import Clip, ClipStatus, Genre, Play
from clips.sample_audio import SHIPPED
from clips.selectors import clip_stats
from clips.services import curator_create
from clips.tests.audio import tone
from clips.tests.factories import AUDIO_BYTES, ClipFactory, ingested_clip

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",  # no sound device here
    "--window-size=1100,860",
)
# Twenty minutes of audio: far more than Chromium buffers ahead, so seeking near the end
# sends a real Range request that the server must not count as a play.
LONG_CLIP_SECONDS = 1200
SEEK_TO_SECONDS = 1080
WAIT_SECONDS = 20


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> WebDriver:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        reason = "needs Debian's chromium and chromium-driver packages"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: .ci/run must install them")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    # The DevTools network log shows which Range requests the player sent.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver path: Selenium Manager never downloads a driver.
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=CHROMEDRIVER)
    )
    yield driver
    driver.quit()


def long_clip() -> Clip:
    """A twenty-minute take of the rain sample: its MP3 frames again and again."""
    out = io.BytesIO()
    with av.open(str(SHIPPED["samples/rain.mp3"])) as sample:
        source = sample.streams.audio[0]
        frames = [(bytes(p), p.duration) for p in sample.demux(source) if p.size]
        repeats = math.ceil(
            LONG_CLIP_SECONDS / float(source.duration * source.time_base)
        )
        with av.open(out, "w", format="mp3") as long_mp3:
            stream = long_mp3.add_stream_from_template(source)
            pts = 0
            for data, duration in frames * repeats:
                packet = av.Packet(data)
                packet.stream, packet.time_base = stream, source.time_base
                packet.pts = packet.dts = pts
                packet.duration = duration
                long_mp3.mux(packet)
                pts += duration
    audio = out.getvalue()
    clip = Clip(
        title="Window Rain (twenty-minute take)",
        genre=Genre.FIELD_RECORDING,
        duration=float(pts * source.time_base),
        content_type="audio/mpeg",
        size_bytes=len(audio),
        status=ClipStatus.READY,  # as the samples are: a CBR MP3 is its own preview
    )
    clip.audio_file.save("long-rain.mp3", ContentFile(audio))
    return clip


def give_history(clips: list[Clip]) -> None:
    """Plays on earlier days, so counts and charts look like a library in use."""
    now, rng = timezone.now(), random.Random(5)  # noqa: S311 (not security)
    for clip in clips:
        plays = [
            Play(clip=clip, played_at=now - datetime.timedelta(days=day))
            for day in range(1, 30)
            for _ in range(rng.choice((0, 1, 1, 2, 3, 5)))
        ]
        Play.objects.bulk_create(plays)
        Clip.objects.filter(pk=clip.pk).update(
            play_count=len(plays), last_played_at=now
        )


def press_play(browser: WebDriver, audio: WebElement) -> None:
    """Click the play button of the native controls, at their left end."""
    offset = -audio.size["width"] // 2 + 20
    actions = ActionChains(browser).move_to_element_with_offset(audio, offset, 0)
    actions.click().perform()


def audio_state(browser: WebDriver, audio: WebElement) -> dict:
    return browser.execute_script(
        "const a = arguments[0];"
        "return {time: a.currentTime, paused: a.paused,"
        " error: a.error && a.error.code};",
        audio,
    )


def wait_for_time(browser: WebDriver, audio: WebElement, seconds: float) -> None:
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda _: audio_state(browser, audio)["time"] > seconds,
        f"audio never played past {seconds} s",
    )


def stream_ranges(browser: WebDriver, clip: Clip) -> list[str | None]:
    """The Range header of each request the page sent for the clip's audio."""
    url = f"/api/v1/clips/{clip.pk}/stream"
    ranges = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        request = message["params"]["request"]
        if request["url"].endswith(url):
            ranges.append(request["headers"].get("Range"))
    return ranges


def screenshot(browser: WebDriver, name: str) -> None:
    directory = os.environ.get("CLIPS_SCREENSHOT_DIR")
    if directory:
        browser.save_screenshot(str(Path(directory) / name))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_play_then_seek_in_chromium_plays_audio_and_counts_one_play(
    browser, live_server, settings
):
    settings.CLIPS_SAMPLES_INGEST = True  # as make run: previews and waveforms
    call_command("loaddata", "sample_clips", verbosity=0)
    clip = long_clip()
    give_history(list(Clip.objects.order_by("pk")))
    plays_before = clip_stats(clip=clip).play_count
    rows_before = Play.objects.count()

    browser.get(f"{live_server.url}/")
    audio = browser.find_element(By.CSS_SELECTOR, f"audio[data-clip='{clip.pk}']")
    press_play(browser, audio)
    wait_for_time(browser, audio, 1.0)
    browser.execute_script(f"arguments[0].currentTime = {SEEK_TO_SECONDS}", audio)
    wait_for_time(browser, audio, SEEK_TO_SECONDS + 1.0)
    state = audio_state(browser, audio)
    screenshot(browser, "listener-page.png")

    assert state["error"] is None
    assert not state["paused"]
    ranges = stream_ranges(browser, clip)
    assert ranges[0] == "bytes=0-"
    assert any(not r.startswith("bytes=0-") for r in ranges[1:]), ranges  # the seek
    assert clip_stats(clip=clip).play_count == plays_before + 1
    assert Play.objects.count() == rows_before + 1  # showing the page counted nothing

    browser.get(f"{live_server.url}/clips/{clip.pk}/")
    assert f"{plays_before + 1} plays in all" in browser.page_source
    screenshot(browser, "clip-page.png")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_click_on_a_waveform_seeks_its_player(browser, live_server):
    clip = ingested_clip(tone("mp3", seconds=12, channels=1))
    for page in ("/", f"/clips/{clip.pk}/"):
        browser.get(live_server.url + page)
        waveform = browser.find_element(By.CSS_SELECTOR, f"#clip-{clip.pk} .waveform")
        audio = browser.find_element(By.CSS_SELECTOR, f"audio[data-clip='{clip.pk}']")
        assert audio_state(browser, audio) == {"time": 0, "paused": True, "error": None}
        # Three quarters across (offsets count from the centre): 9 s into 12.
        quarter = waveform.size["width"] // 4
        actions = ActionChains(browser)
        actions.move_to_element_with_offset(waveform, quarter, 0).click().perform()
        wait_for_time(browser, audio, 9.0)
        state = audio_state(browser, audio)
        assert state["error"] is None, page
        assert not state["paused"], page
        assert state["time"] < 11, page  # seeked to about 9 s, not played there
        # Chromium plays Ogg Opus: the first of the player's sources.
        source = browser.execute_script("return arguments[0].currentSrc", audio)
        assert source.endswith(f"/clips/{clip.pk}/stream?format=opus"), page


def listening_when(clip: Clip, done) -> dict:
    """The clip's listening stats once done(stats) holds: beacons are sent later."""
    stats = {}

    def check(_) -> bool:
        stats.update(vars(clip_listening(clip=clip)))
        return done(stats)

    WebDriverWait(None, WAIT_SECONDS).until(check, "no such progress reported")
    return stats


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_listener_page_reports_how_far_a_listen_got(browser, live_server):
    clip = ingested_clip(tone("mp3", seconds=8, channels=1))
    browser.get(f"{live_server.url}/clips/{clip.pk}/")
    audio = browser.find_element(By.CSS_SELECTOR, f"audio[data-clip='{clip.pk}']")
    press_play(browser, audio)
    wait_for_time(browser, audio, 4.0)  # about half of it
    browser.execute_script("arguments[0].pause()", audio)
    half = listening_when(clip, lambda stats: stats["listens"] == 1)
    # Twentieths of 0.4 s: the pause came in the eleventh or the twelfth.
    assert half["retention"][:10] == [1.0] * 10, half
    assert half["retention"][12:] == [0.0] * 8, half
    assert half["completion_rate"] == 0.0

    browser.execute_script("arguments[0].play()", audio)
    whole = listening_when(clip, lambda stats: stats["completion_rate"] == 1.0)
    assert whole["listens"] == 1
    assert whole["retention"] == [1.0] * 20


# A page on http://localhost:port calls the API on http://127.0.0.1:port: another
# origin, so Chromium itself enforces the CORS answers (clips/api/cors.py).
CROSS_ORIGIN_CALLS = """
const [api, clipId, token, done] = arguments;
const result = {};
try {
    // A simple Range alone needs no preflight; If-None-Match makes Chromium ask.
    const stream = await fetch(`${api}/api/v1/clips/${clipId}/stream`, {
        headers: {Range: "bytes=100-199", "If-None-Match": '"an-old-etag"'}});
    result.stream = {status: stream.status,
                     contentRange: stream.headers.get("Content-Range"),
                     etag: stream.headers.get("ETag"),
                     bytes: (await stream.arrayBuffer()).byteLength};
} catch (error) { result.stream = String(error); }
try {
    const post = await fetch(`${api}/api/v1/clips`, {
        method: "POST",
        headers: {Authorization: `Token ${token}`, "Content-Type": "application/json"},
        body: JSON.stringify({title: "Cross-origin", genre: "jazz", duration: 6,
                              audio_url: "https://example.com/a.mp3"})});
    result.post = post.status;
} catch (error) { result.post = String(error); }
done(result);
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_page_on_another_origin_seeks_a_stream_and_posts_only_when_listed(
    browser, live_server, settings
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    api = live_server.url.replace("localhost", "127.0.0.1")
    clip = ClipFactory()
    _, token = curator_create(username="curator")
    browser.get(f"{live_server.url}/")

    def calls() -> dict:
        return browser.execute_async_script(CROSS_ORIGIN_CALLS, api, clip.pk, token.key)

    unlisted = calls()
    stream = unlisted["stream"]
    assert isinstance(stream, dict), stream  # else the error Chromium gave
    assert stream["status"] == 206
    assert stream["contentRange"] == f"bytes 100-199/{len(AUDIO_BYTES)}"
    assert stream["etag"].startswith('"')
    assert stream["bytes"] == 100
    assert unlisted["post"] == "TypeError: Failed to fetch"
    assert not Clip.objects.filter(title="Cross-origin").exists()  # never sent

    settings.CORS_ALLOWED_ORIGINS = [live_server.url]
    assert calls()["post"] == 201
