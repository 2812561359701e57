import functools
import threading

from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularJSONAPIView
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from clips import caching, selectors, services
from clips.filters import (
    ORDERING_FIELDS,
    ORDERING_PARAMETER,
    ClipFilter,
    ClipListQuery,
    ClipPagination,
    ClipSearchFilter,
)
from clips.models import AUDIO_CONTENT_TYPES
from clips.serializers import (
    ClipInputSerializer,
    ClipSerializer,
    ClipStatsSerializer,
    ClipUploadInputSerializer,
    ErrorSerializer,
    WaveformSerializer,
)
from clips.throttling import ClipWriteThrottle

_ERROR_MEANINGS = {
    400: "Invalid input: `fields` says what.",
    401: "A token or session that is not valid, or none where one is needed.",
    403: "Signed in, but without the permission (or a session without CSRF).",
    404: "No such clip, or no such page.",
    409: "The clip is there, but not what was asked of it (no waveform yet).",
    415: "A body of another media type than the ones listed.",
    429: "Too many requests; Retry-After says when to try again.",
}


def _response_header(
    name: str, schema_type: OpenApiTypes, status: int, description: str
) -> OpenApiParameter:
    """A header every `status` response carries."""
    return OpenApiParameter(
        name,
        schema_type,
        OpenApiParameter.HEADER,
        required=True,
        response=[status],
        description=description,
    )


# DRF sends these with every 401 and 429.
_ERROR_HEADERS = [
    _response_header(
        "WWW-Authenticate", OpenApiTypes.STR, 401, "`Token`: how to authenticate."
    ),
    _response_header("Retry-After", OpenApiTypes.INT, 429, "Seconds to wait."),
]


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(ErrorSerializer, description=_ERROR_MEANINGS[status])
        for status in statuses
    }


def _upload_body() -> OpenApiRequest:
    """Multipart: the audio part's Content-Type names its format (see clip_create)."""
    audio_types = ", ".join(sorted(set(AUDIO_CONTENT_TYPES.values())))
    return OpenApiRequest(
        ClipUploadInputSerializer, encoding={"audio_file": {"contentType": audio_types}}
    )


# Reads are public: a bad token is a 401 all the same (DRF authenticates first).
class WaveformNotReady(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "waveform_not_ready"
    default_detail = "This clip has no waveform yet: it is not ingested, or failed."


@extend_schema_view(
    list=extend_schema(
        description="Clips, newest first: paginated, filterable, searchable. "
        "A parameter given twice, empty or out of range is a 400.",
        parameters=[ClipListQuery, ORDERING_PARAMETER, *_ERROR_HEADERS],
        responses={
            200: ClipSerializer(many=True),
            **_errors(400, 401, 404),
            # Before the app: gunicorn's limit_request_line, or the proxy's.
            (414, "text/html"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A request line over 8190 bytes (the server's page).",
            ),
        },
    ),
    retrieve=extend_schema(
        description="One clip's metadata.",
        parameters=_ERROR_HEADERS,
        responses={200: ClipSerializer, **_errors(401, 404)},
    ),
)
class ClipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    # Streaming is not here: it is the plain Django view in clips/streaming.py.

    serializer_class = ClipSerializer
    # The schema's integer id: "2\r" or " 2" would reach int() and find clip 2.
    lookup_value_regex = "[0-9]+"
    pagination_class = ClipPagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    throttle_classes = [ClipWriteThrottle]
    filter_backends = [DjangoFilterBackend, ClipSearchFilter, OrderingFilter]
    filterset_class = ClipFilter
    search_fields = ["title", "description"]
    ordering_fields = ORDERING_FIELDS
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return selectors.clip_queryset(self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        ClipListQuery(data=request.query_params).is_valid(raise_exception=True)
        page = functools.partial(super().list, request, *args, **kwargs)
        return caching.catalogue_cached(request, page)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        page = functools.partial(super().retrieve, request, *args, **kwargs)
        return caching.catalogue_cached(request, page)

    @extend_schema(
        description="Add a clip (curators): JSON with audio_url, or multipart upload.",
        request={
            "application/json": ClipInputSerializer,
            "application/x-www-form-urlencoded": ClipInputSerializer,
            "multipart/form-data": _upload_body(),
        },
        parameters=[
            _response_header("Location", OpenApiTypes.URI, 201, "The new clip's URL."),
            *_ERROR_HEADERS,
        ],
        responses={201: ClipSerializer, **_errors(400, 401, 403, 415, 429)},
    )
    def create(self, request: Request) -> Response:
        upload = request.content_type.startswith("multipart/form-data")
        input_class = ClipUploadInputSerializer if upload else ClipInputSerializer
        serializer = input_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        clip = services.clip_create(**serializer.validated_data)
        output = ClipSerializer(
            selectors.clip_queryset().get(pk=clip.pk), context={"request": request}
        )
        headers = {
            "Location": request.build_absolute_uri(
                reverse("clip-detail", args=[clip.pk])
            )
        }
        return Response(output.data, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        description="Play count, last play and plays per day for 30 days.",
        parameters=_ERROR_HEADERS,
        responses={200: ClipStatsSerializer, **_errors(401, 404)},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        stats = selectors.clip_stats(clip=self.get_object())
        return Response(ClipStatsSerializer(stats).data)

    @extend_schema(
        description=(
            "The clip's waveform: min and max of its mono mix in a fixed number "
            "of buckets (BBC audiowaveform's JSON). 409 while the clip has none: "
            "not ingested yet, or its ingest failed."
        ),
        responses={200: WaveformSerializer, **_errors(404, 409)},
    )
    @action(detail=True, methods=["get"])
    def waveform(self, request: Request, pk: str) -> Response:
        waveform = selectors.clip_waveform(clip=self.get_object())
        if waveform is None:
            # The clip is there (404 would say it is not); its waveform is not yet.
            raise WaveformNotReady
        return Response(waveform)


_GENERATING = threading.Lock()


class OneSchemaAtATime:
    """Schema views generate one schema at a time per process.

    drf-spectacular imports its extensions' targets on first use, not thread-safely:
    a gthread worker's first schema requests, at once, answered 500 (AttributeError).
    """

    @extend_schema(exclude=True)  # as drf-spectacular's own (SERVE_INCLUDE_SCHEMA)
    def get(self, request: Request, *args, **kwargs) -> Response:
        with _GENERATING:
            return super().get(request, *args, **kwargs)


class SchemaView(OneSchemaAtATime, SpectacularAPIView):
    pass


class SchemaJSONView(OneSchemaAtATime, SpectacularJSONAPIView):
    pass
