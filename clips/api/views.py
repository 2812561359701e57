import functools

from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from clips import caching, listening, plays, selectors, services
from clips.api.filters import (
    ORDERING_PARAMETER,
    ClipFilter,
    ClipListQuery,
    ClipPagination,
)
from clips.api.parsers import BeaconParser, JSONParser
from clips.api.schema import (
    ERROR_HEADERS,
    error_responses,
    response_header,
    upload_body,
)
from clips.api.serializers import (
    ClipChangeInputSerializer,
    ClipInputSerializer,
    ClipSerializer,
    ClipStatsSerializer,
    ClipUploadInputSerializer,
    ListenProgressInputSerializer,
    WaveformSerializer,
)
from clips.api.throttling import ClipWriteThrottle, ListenThrottle

# A listen's progress report: a hundred ranges are about 4 KB of JSON.
LISTEN_BODY_MAX_BYTES = 4096


# Reads are public: a bad token is a 401 all the same (DRF authenticates first).
class NoOpenListen(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "no_open_listen"
    default_detail = (
        "No counted listen of this clip is open for this listener: stream it first."
    )


class BeaconSessionAuthentication(SessionAuthentication):
    """The session without DRF's CSRF check: navigator.sendBeacon cannot send a
    token, and a listen's progress changes nothing but that listen."""

    def enforce_csrf(self, request: Request) -> None:
        return


class WaveformNotReady(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "waveform_not_ready"
    default_detail = "This clip has no waveform yet: it is not ingested, or failed."


@extend_schema_view(
    list=extend_schema(
        description="Clips, newest first (a search: the most relevant first): "
        "paginated, filterable, searchable. A parameter given twice, empty or out "
        "of range is a 400.",
        parameters=[ClipListQuery, ORDERING_PARAMETER, *ERROR_HEADERS],
        responses={
            200: ClipSerializer(many=True),
            **error_responses(400, 401, 404),
            # Before the app: gunicorn's limit_request_line, or the proxy's.
            (414, "text/html"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A request line over 8190 bytes (the server's page).",
            ),
        },
    ),
    retrieve=extend_schema(
        description="One clip's metadata.",
        parameters=ERROR_HEADERS,
        responses={200: ClipSerializer, **error_responses(401, 404)},
    ),
)
class ClipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    # Streaming is not here: it is the plain Django view in clips/streaming/views.py.

    serializer_class = ClipSerializer
    # The schema's integer id: "2\r" or " 2" would reach int() and find clip 2.
    lookup_value_regex = "[0-9]+"
    pagination_class = ClipPagination
    throttle_classes = [ClipWriteThrottle]
    # Search and order are the catalogue's (clips.catalogue), read by
    # clip_browse() and ClipPagination.
    filter_backends = [DjangoFilterBackend]
    filterset_class = ClipFilter

    def get_queryset(self):
        if self.action == "list":
            search = getattr(self, "list_query", {}).get("search", "")
            return selectors.clip_browse(user=self.request.user, search=search)
        return selectors.clip_queryset(self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        query = ClipListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        self.list_query = query.validated_data
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
            "multipart/form-data": upload_body(),
        },
        parameters=[
            response_header("Location", OpenApiTypes.URI, 201, "The new clip's URL."),
            *ERROR_HEADERS,
        ],
        responses={
            201: ClipSerializer,
            **error_responses(400, 401, 403, 413, 415, 429, 503, 507),
        },
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
        description=(
            "Change a clip (curators): its title, description, genre, or where its "
            "preview starts (seconds, before the clip's end, else a 400; null: at "
            "its loudest stretch). A new start renders the previews again in the "
            "background; until then the previous ones stream. A body comes as "
            "JSON (415 otherwise); none changes nothing."
        ),
        request={"application/json": ClipChangeInputSerializer},
        parameters=ERROR_HEADERS,
        responses={
            200: ClipSerializer,
            **error_responses(400, 401, 403, 404, 415, 429),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        # JSON only: a form has no null, which puts the preview back at the loudest.
        media_type = request.content_type.split(";")[0].strip()
        if request.body and media_type != "application/json":
            raise exceptions.UnsupportedMediaType(request.content_type)
        clip = self.get_object()
        serializer = ClipChangeInputSerializer(clip, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.clip_change(clip=clip, **serializer.validated_data)
        output = ClipSerializer(
            selectors.clip_queryset().get(pk=clip.pk), context={"request": request}
        )
        return Response(output.data)

    @extend_schema(
        description="Play count, last play and plays per day for 30 days.",
        parameters=ERROR_HEADERS,
        responses={200: ClipStatsSerializer, **error_responses(401, 404)},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str) -> Response:
        stats = selectors.clip_stats(clip=self.get_object(), with_listening=True)
        return Response(ClipStatsSerializer(stats).data)

    @extend_schema(
        description=(
            "How far this listener got in the listen of the clip their last stream "
            "counted (the same listener and window as the play): the ranges heard, "
            "merged with those sent before, clipped to what is streamed (the "
            "preview's excerpt, else the clip). JSON, or the same as text/plain "
            "(navigator.sendBeacon), no CSRF token; at most 100 ranges and 4 KB. "
            "A range that ends before it starts is a 400 too (no schema says so)."
        ),
        request={
            "application/json": ListenProgressInputSerializer,
            "text/plain": ListenProgressInputSerializer,
        },
        parameters=ERROR_HEADERS,
        responses={
            204: OpenApiResponse(description="Recorded."),
            **error_responses(
                400,
                404,
                409,
                415,
                429,
                meanings={
                    409: "No counted listen of this clip open for this listener "
                    "(no counted stream, or its window has passed): no_open_listen."
                },
            ),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[JSONParser, BeaconParser],
        # A token as everywhere in the API (a curator's: staff plays never count,
        # so theirs is a 409), the session without its CSRF check.
        authentication_classes=[TokenAuthentication, BeaconSessionAuthentication],
        permission_classes=[AllowAny],
        throttle_classes=[],  # ListenThrottle, in the view: it reads the window too
    )
    def listens(self, request: Request, pk: str) -> Response:
        # One round trip to Redis (the listener's rate limit and the window the
        # clip streams, kept since it last changed), then the one upsert.
        throttle = ListenThrottle()
        allowed, kept = throttle.allow_and_read(
            request, self, keys=listening.window_keys(clip_id=int(pk))
        )
        if not allowed:
            self.throttled(request, throttle.wait())
        if len(request.body) > LISTEN_BODY_MAX_BYTES:
            raise exceptions.ValidationError(
                {"heard": [f"At most {LISTEN_BODY_MAX_BYTES} bytes."]}
            )
        window = listening.window_found(kept) or listening.window_of(
            self.get_queryset(), int(pk), kept=kept
        )
        if window is None:
            raise exceptions.NotFound
        serializer = ListenProgressInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        listener = plays.listener_of(request)
        report = serializer.validated_data
        if listener is None or not listening.progress_record(
            window=window,
            clip_id=int(pk),
            listener=listener,
            heard=report["heard"],
            ended=report["ended"],
        ):
            raise NoOpenListen
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        description=(
            "The clip's waveform: min and max of its mono mix in a fixed number "
            "of buckets (BBC audiowaveform's JSON). 409 while the clip has none: "
            "not ingested yet, or its ingest failed."
        ),
        responses={200: WaveformSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["get"])
    def waveform(self, request: Request, pk: str) -> Response:
        waveform = selectors.clip_waveform(clip=self.get_object())
        if waveform is None:
            # The clip is there (404 would say it is not); its waveform is not yet.
            raise WaveformNotReady
        return Response(waveform)
