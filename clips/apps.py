from django.apps import AppConfig


class ClipsConfig(AppConfig):
    name = "clips"
    verbose_name = "Clips"

    def ready(self) -> None:
        # Register the stream metrics at start-up, so /metrics shows them at 0,
        # and the signal receivers.
        from clips import metrics, signals  # noqa: F401
