from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.forms import CharField
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from clips import listening, selectors, services, tasks
from clips.catalogue import pages, search
from clips.files import storage
from clips.models import Clip, Play
from clips.templatetags.clips_format import waveform

# Shown, never edited: set by clip_save(), the ingest or plays.
INGEST_FIELDS = [
    "status",
    "failure_reason",
    "duration_corrected_from",
    "codec",
    "sample_rate",
    "channels",
    "bit_rate",
    "loudness_lufs",
    "true_peak_dbtp",
    "previews",
    "ingested_at",
]
DERIVED_FIELDS = [
    "content_type",
    "size_bytes",
    "play_count",
    "last_played_at",
    "created_at",
    "updated_at",
]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "waveform_small",
        "genre",
        "duration",
        "status",
        "failure_reason",
        "codec",
        "play_count",
        "last_played_at",
        "completion",
        "created_at",
    ]
    list_filter = ["status", "genre", "created_at"]
    # The catalogue's search, count and page limits (clips.catalogue): a million
    # clips are a change list of milliseconds.
    search_fields = ["title", "description"]
    search_help_text = (
        'Words in the title or description: "a phrase", -word for none with it.'
    )
    show_full_result_count = False
    paginator = pages.EstimatingPaginator
    readonly_fields = [
        "audio_preview",
        "waveform",
        "listeners",
        *INGEST_FIELDS,
        *DERIVED_FIELDS,
    ]
    actions = ["ingest_again", "previews_render"]
    fieldsets = [
        (None, {"fields": ["title", "description", "genre", "duration"]}),
        (
            "Audio: upload a file or give a URL",
            {
                "fields": [
                    "audio_file",
                    "audio_url",
                    "audio_preview",
                    "waveform",
                    "preview_start",
                ],
                "description": (
                    "A click on the waveform sets where the preview starts; saved, "
                    "the preview is rendered again."
                ),
            },
        ),
        ("Ingest: what decoding the audio found", {"fields": INGEST_FIELDS}),
        ("Derived", {"fields": [*DERIVED_FIELDS, "listeners"]}),
    ]

    class Media:
        js = ["clips/waveform.js"]  # a click on the waveform sets the preview's start

    # Not forms.URLField: it rewrites what was typed (adds a scheme, re-joins the
    # parts) and refuses with a bare "Enter a valid URL." before the model's
    # validators can say why (clips.remote.url_syntax).
    formfield_overrides = {models.URLField: {"form_class": CharField}}

    def get_readonly_fields(self, request: HttpRequest, obj: Clip | None = None):
        # Once measured, the duration is the ingest's (clip_save keeps it).
        measured = ["duration"] if obj is not None and obj.ingested_at else []
        return [*self.readonly_fields, *measured]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Clip]:
        return listening.with_completion(
            selectors.with_waveform_peaks(selectors.clip_queryset())
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Clip], search_term: str
    ) -> tuple[QuerySet[Clip], bool]:
        return search.search(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: Clip, form, change: bool) -> None:
        services.clip_save(clip=obj)

    def changeform_view(
        self, request: HttpRequest, object_id=None, form_url="", extra_context=None
    ) -> HttpResponse:
        """An upload the storage could not take: the same page again, with why.

        clip_save() kept nothing of it, so there is nothing to undo.
        """
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except storage.StorageFailed as failed:
            self.message_user(request, str(failed), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.action(description="Ingest the selected clips again", permissions=["change"])
    def ingest_again(self, request: HttpRequest, queryset: QuerySet[Clip]) -> None:
        clip_ids = list(queryset.values_list("pk", flat=True))
        for clip_id in clip_ids:
            tasks.clip_ingest_queue(clip_id=clip_id)
        self.message_user(
            request, f"Ingest queued for {len(clip_ids)} clip(s).", messages.SUCCESS
        )

    @admin.action(
        description="Render the previews of the selected clips again",
        permissions=["change"],
    )
    def previews_render(self, request: HttpRequest, queryset: QuerySet[Clip]) -> None:
        """Only those not made as today's settings, start and audio would make."""
        owed = len(
            services.clips_previews_owe(
                clip_ids=selectors.clips_previews_stale(clips=queryset)
            )
        )
        self.message_user(
            request,
            f"Previews to render again: {owed} of {queryset.count()} clip(s); the "
            "others are up to date or not ready.",
            messages.SUCCESS,
        )

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Summarise a clip's plays on the delete page instead of listing every one.

        Deleting a clip deletes its statistics with it, in one transaction.
        """
        clips = list(objs)
        plays = Play.objects.filter(clip__in=clips).count()
        perms_needed = set() if self.has_delete_permission(request) else {"clip"}
        to_delete = [str(clip) for clip in clips]
        model_count = {
            Clip._meta.verbose_name_plural: len(clips),
            Play._meta.verbose_name_plural: plays,
        }
        return to_delete, model_count, perms_needed, []

    # Clips nobody reported on sort below 0%, either way, on both databases.
    @admin.display(
        description="Heard to the end",
        ordering=Coalesce("listen_completion", Value(-1.0)),
    )
    def completion(self, clip: Clip) -> str:
        """The share of listens that heard 90% of the preview (clips.listening)."""
        rate = getattr(clip, "listen_completion", None)
        return "-" if rate is None else f"{rate:.0%}"

    @admin.display(description=f"Listeners, last {selectors.STATS_DAYS} days")
    def listeners(self, clip: Clip) -> int | str:
        return selectors.clip_stats(clip=clip).listeners if clip.pk else "-"

    @admin.display(description="Preview")
    def audio_preview(self, clip: Clip) -> str:
        """The listener's player; staff never count as listeners (clips.plays)."""
        if not clip.pk:
            return "Saved clips can be previewed here."
        return render_to_string("clips/_player.html", {"clip": clip})

    @admin.display(description="Waveform")
    def waveform(self, clip: Clip) -> str:
        """The waveform to choose the preview's start on, with how far listeners
        get drawn over the preview (one aggregate of their progress)."""
        heard = listening.clip_listening(clip=clip) if clip.pk else None
        drawn = _waveform_svg(
            clip,
            width=600,
            height=80,
            input_id="id_preview_start",
            retention=heard.retention if heard and heard.listens else None,
        )
        if not drawn:
            return "Drawn once ingested."
        if not heard or not heard.listens:
            return drawn
        summary = format_html(
            "<br>{} listens reported progress: {} heard it to the end, half heard "
            "{} s or more (the red line: the share still listening).",
            heard.listens,
            f"{heard.completion_rate:.0%}",
            f"{heard.median_heard_seconds:g}",
        )
        return drawn + summary  # both safe: rendered, and format_html

    @admin.display(description="Previews made")
    def previews(self, clip: Clip) -> str:
        """The excerpt and each file's measured loudness."""
        made = getattr(clip, "previews", [])
        if not made:
            return "-"
        excerpt = made[0]
        chosen = "the loudest stretch" if clip.preview_start is None else "chosen"
        lines = [
            f"{excerpt.excerpt_duration:g} s from {excerpt.excerpt_start:g} s "
            f"({chosen}){'; being rendered again' if clip.preview_owed else ''}",
            *(
                f"{each.codec}: {_figure(each.loudness_lufs, 'LUFS')}, "
                f"true peak {_figure(each.true_peak_dbtp, 'dBTP')}"
                for each in made
            ),
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="Waveform")
    def waveform_small(self, clip: Clip) -> str:
        return _waveform_svg(clip, width=120, height=24) or "-"


def _waveform_svg(
    clip: Clip,
    *,
    width: int,
    height: int,
    input_id: str = "",
    retention: list[float] | None = None,
) -> str | None:
    """The pages' SVG (clips/_waveform.html) of the summary on the clip's row."""
    # A new clip (the add page) has no annotation: nothing to draw yet.
    peaks = getattr(clip, "waveform_peaks", None)
    if not peaks:
        return None
    context = waveform(
        peaks,
        label=clip.title,
        duration=clip.duration if input_id else None,
        excerpt=next(iter(getattr(clip, "previews", [])), None),
        width=width,
        height=height,
        input_id=input_id,
        retention=retention,
    )
    return render_to_string("clips/_waveform.html", context)


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.1f} {unit}"
