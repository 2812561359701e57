"""The catalogue's query parameters: validated first, then read by the filters."""

from typing import Any

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers
from rest_framework.filters import SearchFilter
from rest_framework.pagination import PageNumberPagination

from clips.api.serializers import IntegerField, NumberField, OneValueEach, TextField
from clips.models import MAX_DURATION_SECONDS, Clip, ClipStatus, Genre
from clips.selectors import SEARCH_MAX_TERMS

MAX_PAGE_SIZE = 100
SEARCH_MAX_LENGTH = 200
ORDERING_FIELDS = ["title", "created_at", "duration", "play_count"]
ORDERINGS = [f"{sign}{field}" for field in ORDERING_FIELDS for sign in ("", "-")]
ORDERING_SCHEMA = {
    "type": "array",
    "items": {"type": "string", "enum": ORDERINGS},
    "minItems": 1,
    "maxItems": len(ORDERING_FIELDS),
}


class ClipFilter(django_filters.FilterSet):
    duration_min = django_filters.NumberFilter(field_name="duration", lookup_expr="gte")
    duration_max = django_filters.NumberFilter(field_name="duration", lookup_expr="lte")

    class Meta:
        model = Clip
        fields = ["genre", "status"]


class ClipSearchFilter(SearchFilter):
    """Search on a few short terms, so a long query stays a small query."""

    max_terms = SEARCH_MAX_TERMS
    max_term_length = 100

    def get_search_terms(self, request):
        terms = super().get_search_terms(request)
        return [term[: self.max_term_length] for term in terms[: self.max_terms]]


class ClipPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


@extend_schema_field(ORDERING_SCHEMA)
class OrderingField(serializers.Field):
    """`ordering=-play_count,title`: one to four sort keys, comma-separated."""

    default_error_messages = {
        "invalid": "Give up to {count} of {choices}, separated by commas.",
    }

    def to_internal_value(self, data: Any) -> list[str]:
        keys = data.split(",") if isinstance(data, str) else []
        if not 0 < len(keys) <= len(ORDERING_FIELDS) or set(keys) - set(ORDERINGS):
            choices = ", ".join(ORDERINGS)
            self.fail("invalid", count=len(ORDERING_FIELDS), choices=choices)
        return keys


class ClipListQuery(OneValueEach, serializers.Serializer):
    """What GET /clips takes. Anything else is a 400 before a filter sees it.

    DRF's filters and paginator drop what they cannot read (`page_size=abc`,
    `ordering=nonsense`, `page=1&page=2`) and answer something else than was asked.
    """

    page = IntegerField(required=False, min_value=1, help_text="Page number.")
    page_size = IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        help_text=f"Clips per page (default {ClipPagination.page_size}).",
    )
    genre = serializers.ChoiceField(choices=Genre.choices, required=False)
    status = serializers.ChoiceField(choices=ClipStatus.choices, required=False)
    duration_min = NumberField(
        required=False,
        min_value=0,
        max_value=MAX_DURATION_SECONDS,
        help_text="Shortest duration, in seconds.",
    )
    duration_max = NumberField(
        required=False,
        min_value=0,
        max_value=MAX_DURATION_SECONDS,
        help_text="Longest duration, in seconds.",
    )
    search = TextField(
        required=False,
        allow_blank=True,
        max_length=SEARCH_MAX_LENGTH,
        help_text=(
            f"Words to find in title or description (all of them; the first "
            f"{SEARCH_MAX_TERMS} count)."
        ),
    )
    ordering = OrderingField(required=False)


# `ordering` as ClipListQuery takes it: one parameter, keys joined by commas.
ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    type=ORDERING_SCHEMA,
    style="form",
    explode=False,
    description="Sort keys, comma-separated; `-` for descending.",
)
