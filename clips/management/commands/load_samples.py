from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from clips.sample_audio import write_samples


class Command(BaseCommand):
    help = (
        "Synthesise the six sample clips' audio into MEDIA_ROOT/samples "
        "and load fixtures/sample_clips.json."
    )

    def handle(self, *args, **options) -> None:
        directory = Path(settings.MEDIA_ROOT) / "samples"
        written = write_samples(directory)
        self.stdout.write(f"Wrote {len(written)} sample audio file(s) to {directory}.")
        call_command("loaddata", "sample_clips", verbosity=options["verbosity"])
