"""The views that serve the schema: /openapi.json and /api/v1/schema (the docs
pages, /docs and /redoc, are drf-spectacular's own, reading these).

Not in clips.api.schema: DRF imports that module while its own views load.
"""

import threading

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularJSONAPIView
from rest_framework.request import Request
from rest_framework.response import Response

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
