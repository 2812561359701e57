from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from clips.files import cleanup, storage
from clips.management.progress import progress_show


class Command(BaseCommand):
    help = (
        "Delete the files in storage that no clip or rendition names: those a failed "
        "delete left behind (clips.files.cleanup logs each). Files younger than "
        "--min-age are kept: their rows may not be committed yet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--min-age",
            type=int,
            default=3600,
            help="Seconds a file must be old to go (default 3600).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List them; delete nothing."
        )

    def handle(self, *args, min_age: int, dry_run: bool, **options) -> None:
        files = cleanup.storage
        names = sorted(_walk(files))
        cutoff = timezone.now() - timedelta(seconds=min_age)
        # Read once; file_release checks each candidate again under its lock.
        referenced = cleanup.files_referenced()
        swept, kept = [], 0
        for done, name in enumerate(names, start=1):
            if name not in referenced and _older(files, name, cutoff):
                if dry_run or cleanup.file_release(name=name):
                    swept.append(name)
            else:
                kept += 1
            progress_show(self.stderr, done, len(names))
        for name in swept:
            self.stdout.write(name)
        verb = "would go" if dry_run else "deleted"
        self.stdout.write(f"{len(names)} files: {len(swept)} {verb}, {kept} kept.")


def _walk(files, directory: str = ""):
    """Every file name under `directory`, on disk or in the bucket."""
    try:
        directories, names = files.listdir(directory)
    except FileNotFoundError:  # MEDIA_ROOT not made yet: nothing stored
        return
    for name in names:
        yield f"{directory}{name}"
    for child in directories:
        yield from _walk(files, f"{directory}{child}/")


def _older(files, name: str, cutoff) -> bool:
    try:
        return files.get_modified_time(name) < cutoff
    except storage.STORAGE_ERRORS as error:
        if storage.file_missing(error):
            return False  # gone meanwhile
        raise
