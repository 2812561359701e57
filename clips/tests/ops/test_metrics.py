"""The stream metrics, read back from prometheus_client's registry as deltas."""

import socket
import threading

import pytest
from django.urls import reverse
from prometheus_client import REGISTRY

from clips.metrics import STREAM_ERROR_REASONS
from clips.streaming import metering
from clips.tests.factories import AUDIO_BYTES, ClipFactory, RemoteClipFactory

SIZE = len(AUDIO_BYTES)


class Samples:
    """Values of the registry's samples now, to compare with later ones."""

    def __init__(self) -> None:
        self._before = self._read()

    @staticmethod
    def _read() -> dict[tuple, float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in REGISTRY.collect()
            for sample in metric.samples
        }

    def delta(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self._read().get(key, 0.0) - self._before.get(key, 0.0)


def stream(client, clip, **headers):
    return client.get(reverse("clip-stream", args=[clip.pk]), **headers)


def consume(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
class TestFileStreams:
    def test_a_listen_counts_once_by_clip_and_genre(self, client):
        clip = ClipFactory(genre="jazz")
        samples = Samples()
        consume(stream(client, clip))
        consume(stream(client, clip, HTTP_RANGE="bytes=5000-"))  # a seek
        assert (
            samples.delta("clips_streams_total", clip_id=str(clip.pk), genre="jazz")
            == 1
        )

    def test_bytes_duration_and_first_byte_of_a_range(self, client):
        clip = ClipFactory()
        samples = Samples()
        consume(stream(client, clip, HTTP_RANGE="bytes=1000-1999"))
        assert samples.delta("clips_stream_bytes_total", source="file") == 1000
        assert samples.delta("clips_stream_duration_seconds_count", source="file") == 1
        assert samples.delta("clips_stream_duration_seconds_sum", source="file") > 0
        assert (
            samples.delta("clips_stream_first_byte_seconds_count", source="file") == 1
        )
        assert samples.delta("clips_stream_errors_total", reason="client_gone") == 0

    def test_listener_who_leaves_early_is_client_gone(self, client):
        clip = ClipFactory(audio_file__data=bytes(100_000))
        samples = Samples()
        response = stream(client, clip)
        first_block = next(iter(response.streaming_content))
        response.close()
        assert samples.delta("clips_stream_errors_total", reason="client_gone") == 1
        assert samples.delta("clips_stream_bytes_total", source="file") == len(
            first_block
        )

    def test_unsatisfiable_range_counts_an_error_not_a_stream(self, client):
        clip = ClipFactory()
        samples = Samples()
        assert stream(client, clip, HTTP_RANGE=f"bytes={SIZE}-").status_code == 416
        reason = "range_not_satisfiable"
        assert samples.delta("clips_stream_errors_total", reason=reason) == 1
        assert samples.delta("clips_stream_duration_seconds_count", source="file") == 0

    def test_missing_audio_file_counts_an_error(self, client):
        clip = ClipFactory()
        clip.audio_file.storage.delete(clip.audio_file.name)
        samples = Samples()
        assert stream(client, clip).status_code == 404
        assert samples.delta("clips_stream_errors_total", reason="audio_missing") == 1

    def test_head_is_neither_a_stream_nor_a_body(self, client):
        clip = ClipFactory()
        samples = Samples()
        client.head(reverse("clip-stream", args=[clip.pk]))
        assert samples.delta("clips_streams_total", clip_id=str(clip.pk)) == 0
        assert samples.delta("clips_stream_duration_seconds_count", source="file") == 0


@pytest.fixture
def loopback_origins_allowed(settings):
    """The test origins run on loopback, which production never fetches from."""
    settings.CLIPS_ORIGIN_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_origins_allowed")
class TestRemoteStreams:
    def test_relayed_bytes_and_timings_are_counted(self, client, httpserver):
        httpserver.expect_request("/a.wav").respond_with_data(
            AUDIO_BYTES, content_type="audio/wav"
        )
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/a.wav"))
        samples = Samples()
        assert consume(stream(client, clip)) == AUDIO_BYTES
        assert samples.delta("clips_stream_bytes_total", source="remote") == SIZE
        assert (
            samples.delta("clips_stream_first_byte_seconds_count", source="remote") == 1
        )
        assert (
            samples.delta("clips_stream_duration_seconds_count", source="remote") == 1
        )

    def test_origin_error_status_counts_origin_error(self, client, httpserver):
        httpserver.expect_request("/gone.wav").respond_with_data("no", status=500)
        clip = RemoteClipFactory(audio_url=httpserver.url_for("/gone.wav"))
        samples = Samples()
        assert stream(client, clip).status_code == 502
        assert samples.delta("clips_stream_errors_total", reason="origin_error") == 1

    def test_unreachable_origin_counts_origin_unreachable(self, client):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        clip = RemoteClipFactory(audio_url=f"http://127.0.0.1:{port}/a.wav")
        samples = Samples()
        assert stream(client, clip).status_code == 502
        reason = "origin_unreachable"
        assert samples.delta("clips_stream_errors_total", reason=reason) == 1

    def test_origin_that_breaks_off_is_origin_error_not_client_gone(self, client):
        clip = RemoteClipFactory(audio_url=f"http://127.0.0.1:{_short_origin()}/a")
        samples = Samples()
        response = stream(client, clip)
        with pytest.raises(Exception, match=r"IncompleteRead|Connection broken"):
            consume(response)
        response.close()
        assert samples.delta("clips_stream_errors_total", reason="origin_error") == 1
        assert samples.delta("clips_stream_errors_total", reason="client_gone") == 0


def _short_origin() -> int:
    """Port of a one-shot origin that promises 10000 bytes, sends 100 and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                b"Content-Length: 10000\r\n\r\n" + AUDIO_BYTES[:100]
            )

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_unknown_error_reason_is_refused():
    with pytest.raises(ValueError, match="Unknown stream error reason"):
        metering.stream_error_record(reason="/api/v1/clips/1/stream")


def test_every_error_reason_is_exported_from_the_start(client):
    text = client.get("/metrics").content.decode()
    for reason in STREAM_ERROR_REASONS:
        assert f'clips_stream_errors_total{{reason="{reason}"}}' in text


@pytest.mark.django_db
def test_metrics_endpoint_has_http_db_and_model_metrics(client):
    ClipFactory()
    client.get("/api/v1/clips")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "django_http_requests_total_by_view_transport_method_total{" in text
    assert 'view="clip-list"' in text
    assert "django_db_execute_total{" in text
    assert 'django_model_inserts_total{model="clip"}' in text


@pytest.mark.django_db
def test_metrics_is_served_over_http_when_https_is_enforced(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/v1/clips").status_code == 301


@pytest.mark.django_db
def test_metrics_answers_a_host_that_allowed_hosts_does_not_list(client, settings):
    """Prometheus asks each replica by the address its DNS discovery found."""
    settings.ALLOWED_HOSTS = ["clips.example.com"]
    response = client.get("/metrics", HTTP_HOST="172.18.0.7:8000")
    assert response.status_code == 200
    assert b"clips_stream_errors_total" in response.content
    assert client.get("/api/v1/clips", HTTP_HOST="172.18.0.7:8000").status_code == 400
