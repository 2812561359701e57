from django.core.management.base import BaseCommand, CommandParser

from clips import tasks
from clips.management.progress import progress_show
from clips.models import Clip, ClipStatus


class Command(BaseCommand):
    help = (
        "Ingest clips again (probe, preview, waveform), e.g. after an upgrade: all of "
        "them, or those given by id or status. Runs here, one clip after another."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Clip ids (default: all).")
        parser.add_argument(
            "--status",
            choices=ClipStatus.values,
            action="append",
            help="Only clips in this status (repeatable).",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Queue each clip's task for the workers instead of running it here.",
        )

    def handle(self, *args, ids: list[int], status, queue: bool, **options) -> None:
        clips = Clip.objects.order_by("pk")
        if ids:
            clips = clips.filter(pk__in=ids)
        if status:
            clips = clips.filter(status__in=status)
        clip_ids = list(clips.values_list("pk", flat=True))
        total = len(clip_ids)
        outcomes = {value: 0 for value in ClipStatus.values}
        for done, clip_id in enumerate(clip_ids, start=1):
            if queue:
                tasks.clip_ingest_queue(clip_id=clip_id)
            else:
                tasks.clip_ingest_here(clip_id=clip_id)
                outcome = Clip.objects.filter(pk=clip_id).values("status").first()
                if outcome:
                    outcomes[outcome["status"]] += 1
            progress_show(self.stderr, done, total)
        summary = ", ".join(f"{count} {name}" for name, count in outcomes.items())
        self.stdout.write(
            f"{total} clips queued." if queue else f"{total} clips: {summary}."
        )
