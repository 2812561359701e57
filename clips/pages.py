"""The listener's pages: server-rendered HTML over the same selectors as the API.

Plain Django views, not DRF: they render templates, not representations.
"""

from dataclasses import dataclass

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import pluralize

from clips import selectors
from clips.catalogue import pages
from clips.models import Genre
from clips.selectors import DailyPlays

PAGE_SIZE = 20
# The plays-per-day chart's drawing area, in SVG user units.
CHART_WIDTH = 600
CHART_HEIGHT = 120


class BrowseForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    genre = forms.ChoiceField(
        required=False,
        choices=[("", "All genres"), *Genre.choices],
        widget=forms.Select(attrs={"aria-label": "Genre"}),
    )


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    width: float
    height: float
    label: str


def catalogue(request: HttpRequest) -> HttpResponse:
    """The catalogue: search, genre filter, a player per clip, 20 clips a page
    (numbered for the first ones, then by cursor, as in the API)."""
    form = BrowseForm(request.GET)
    # An invalid filter (an unknown genre) shows the whole catalogue, not an error.
    filters = form.cleaned_data if form.is_valid() else {}
    clips = selectors.with_waveform_peaks(
        selectors.clip_browse(
            user=request.user,
            search=filters.get("q", ""),
            genre=filters.get("genre", ""),
        )
    )
    try:
        page = pages.page_get(
            clips,
            size=PAGE_SIZE,
            number=_number(request.GET.get("page")),
            cursor=request.GET.get("cursor"),
        )
    except pages.PageError:
        # A page past the last or a stale cursor: the first page, as for a genre.
        page = pages.page_get(clips, size=PAGE_SIZE)
    return render(request, "clips/catalogue.html", {"form": form, "page": page})


def _number(page: str | None) -> int | None:
    return int(page) if page and page.isdecimal() and int(page) > 0 else None


def clip_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One clip with its player and its plays per day for the last 30 days."""
    clip = get_object_or_404(selectors.clip_queryset(request.user), pk=pk)
    stats = selectors.clip_stats(clip=clip)
    context = {
        "clip": clip,
        "stats": stats,
        "bars": chart_bars(stats.plays_per_day),
        "peak": max((day.plays for day in stats.plays_per_day), default=0),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        # Here in full (a file read); the catalogue draws the summary on the row.
        "waveform_peaks": selectors.clip_waveform_peaks(clip=clip),
    }
    return render(request, "clips/clip.html", context)


def chart_bars(plays_per_day: list[DailyPlays]) -> list[ChartBar]:
    """One bar per day, scaled so that the busiest day fills the chart's height."""
    peak = max((day.plays for day in plays_per_day), default=0) or 1
    slot = CHART_WIDTH / max(len(plays_per_day), 1)
    bars = []
    for index, day in enumerate(plays_per_day):
        height = round(CHART_HEIGHT * day.plays / peak, 1)
        bars.append(
            ChartBar(
                x=round(index * slot + 1, 1),
                y=round(CHART_HEIGHT - height, 1),
                width=round(slot - 2, 1),
                height=height,
                label=(
                    f"{day.date:%a %d %b}: {day.plays} play{pluralize(day.plays)}, "
                    f"{day.listeners} listener{pluralize(day.listeners)}"
                ),
            )
        )
    return bars
