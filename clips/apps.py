from django.apps import AppConfig


class ClipsConfig(AppConfig):
    name = "clips"
    verbose_name = "Clips"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        # Register the stream metrics at start-up, so /metrics shows them at 0,
        # the signal receivers and the system checks.
        from clips import checks, metrics, signals  # noqa: F401
        from clips.api.cors import cors_allow_public_reads

        check_request_enabled.connect(
            cors_allow_public_reads, dispatch_uid="clips.cors_allow_public_reads"
        )
