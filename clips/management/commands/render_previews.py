from django.core.management.base import BaseCommand, CommandParser

from clips import selectors, services, tasks
from clips.management.progress import progress_show
from clips.models import Clip


class Command(BaseCommand):
    help = (
        "Render the previews of ready clips again where today's settings "
        "(CLIPS_PREVIEW_SECONDS, CLIPS_PREVIEW_LUFS), a clip's start or its audio "
        "would make other ones: all clips, or those given by id. Runs here, one "
        "clip after another, unless --queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Clip ids (default: all).")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Queue each clip's render for the workers instead of running it here.",
        )

    def handle(self, *args, ids: list[int], queue: bool, **options) -> None:
        clips = Clip.objects.filter(pk__in=ids) if ids else None
        stale = selectors.clips_previews_stale(clips=clips)
        owed = services.clips_previews_owe(clip_ids=stale, queue=queue)
        for done, clip_id in enumerate(owed, start=1):
            if not queue:
                tasks.clip_ingest_here(clip_id=clip_id)
            progress_show(self.stderr, done, len(owed))
        verb = "queued" if queue else "rendered"
        self.stdout.write(f"{len(owed)} clips' previews {verb}; the others up to date.")
