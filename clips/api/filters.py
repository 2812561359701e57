"""The catalogue's query parameters, validated first, and its pages."""

from typing import Any

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from clips.api.serializers import IntegerField, NumberField, OneValueEach, TextField
from clips.catalogue import pages
from clips.models import MAX_DURATION_SECONDS, Clip, ClipStatus, Genre

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


class ClipPagination(BasePagination):
    """Numbered pages for the first clips (`?page=N`), a keyset cursor in `next`
    and `previous` (clips.catalogue.pages); `count` exact up to
    EXACT_COUNT_MAX, estimated above and flagged so."""

    page_size = 20

    def paginate_queryset(self, queryset, request: Request, view=None) -> list:
        query = view.list_query
        try:
            self.page = pages.page_get(
                queryset,
                ordering=query.get("ordering"),
                size=query.get("page_size", self.page_size),
                number=query.get("page"),
                cursor=query.get("cursor"),
            )
        except pages.PastTheLast as error:
            raise exceptions.NotFound(str(error)) from error
        except pages.PageError as error:
            raise exceptions.ValidationError({error.parameter: [str(error)]}) from error
        self.request = request
        return self.page.clips

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "count": self.page.count,
                "count_estimated": self.page.count_estimated,
                "next": self._link(self.page.next),
                "previous": self._link(self.page.previous),
                "results": data,
            }
        )

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), "page")
        return replace_query_param(url, "cursor", cursor)

    def get_schema_operation_parameters(self, view) -> list:
        return []  # ClipListQuery states page, page_size and cursor

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["count", "count_estimated", "next", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": (
                        f"Clips that match: exact up to {pages.EXACT_COUNT_MAX}, "
                        "the database's estimate above (count_estimated)."
                    ),
                },
                "count_estimated": {
                    "type": "boolean",
                    "description": "True when count is an estimate.",
                },
                "next": {**link, "description": "The next page (a cursor)."},
                "previous": {**link, "description": "The previous page (a cursor)."},
                "results": schema,
            },
        }


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

    page = IntegerField(
        required=False,
        min_value=1,
        help_text=(
            f"Page number, for the first {pages.MAX_OFFSET} clips; deeper is a 400: "
            "follow next, which carries a cursor."
        ),
    )
    cursor = serializers.CharField(
        required=False,
        help_text=(
            "Where a page starts: as next and previous give it (opaque; any other "
            "is a 400, as is a cursor with page)."
        ),
    )
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
            'Words to find in title or description: all of them, "a phrase", '
            "-word for none with it, or between alternatives; the last word also "
            "as the start of one. Ranked by relevance unless ordering is given."
        ),
    )
    ordering = OrderingField(required=False)

    def validate(self, attrs: dict) -> dict:
        if "page" in attrs and "cursor" in attrs:
            raise serializers.ValidationError(
                {"cursor": ["Give page or cursor, not both."]}
            )
        return attrs


# `ordering` as ClipListQuery takes it: one parameter, keys joined by commas.
ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    type=ORDERING_SCHEMA,
    style="form",
    explode=False,
    description="Sort keys, comma-separated; `-` for descending.",
)
