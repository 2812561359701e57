import functools

from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from clips import caching, selectors, services
from clips.filters import ClipFilter, ClipPagination, ClipSearchFilter
from clips.serializers import (
    ClipInputSerializer,
    ClipSerializer,
    ClipStatsSerializer,
    ErrorSerializer,
    WaveformSerializer,
)
from clips.throttling import ClipWriteThrottle


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}


@extend_schema_view(
    list=extend_schema(
        description="Clips, newest first: paginated, filterable, searchable.",
        responses={200: ClipSerializer(many=True), **_errors(400, 404)},
    ),
    retrieve=extend_schema(
        description="One clip's metadata.",
        responses={200: ClipSerializer, **_errors(404)},
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
    pagination_class = ClipPagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    throttle_classes = [ClipWriteThrottle]
    filter_backends = [DjangoFilterBackend, ClipSearchFilter, OrderingFilter]
    filterset_class = ClipFilter
    search_fields = ["title", "description"]
    ordering_fields = ["title", "created_at", "duration", "play_count"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return selectors.clip_queryset(self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = functools.partial(super().list, request, *args, **kwargs)
        return caching.catalogue_cached(request, page)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        page = functools.partial(super().retrieve, request, *args, **kwargs)
        return caching.catalogue_cached(request, page)

    @extend_schema(
        description="Add a clip (curators): JSON with audio_url, or multipart upload.",
        request=ClipInputSerializer,
        responses={201: ClipSerializer, **_errors(400, 401, 403, 415, 429)},
    )
    def create(self, request: Request) -> Response:
        serializer = ClipInputSerializer(data=request.data)
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
        responses={200: ClipStatsSerializer, **_errors(404)},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        stats = selectors.clip_stats(clip=self.get_object())
        return Response(ClipStatsSerializer(stats).data)

    @extend_schema(
        description=(
            "The clip's waveform: min and max of its mono mix in a fixed number "
            "of buckets (BBC audiowaveform's JSON). 404 until the clip is ingested."
        ),
        responses={200: WaveformSerializer, **_errors(404)},
    )
    @action(detail=True, methods=["get"])
    def waveform(self, request: Request, pk: str) -> Response:
        waveform = selectors.clip_waveform(clip=self.get_object())
        if waveform is None:
            raise exceptions.NotFound("This clip has no waveform yet.")
        return Response(waveform)
