from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from clips import pages
from clips.api.schema_views import SchemaJSONView, SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("clips.urls")),
    path("api/v1/schema", SchemaView.as_view(), name="schema"),
    path(
        "api/v1/docs",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
    path("api/v1/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Where the service description promises them: /docs, /redoc, /openapi.json.
    path("openapi.json", SchemaJSONView.as_view(), name="openapi-json"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi-json"), name="docs"),
    path(
        "redoc",
        SpectacularRedocView.as_view(url_name="openapi-json"),
        name="redoc-root",
    ),
    # The listener's pages.
    path("", pages.catalogue, name="catalogue"),
    path("clips/<int:pk>/", pages.clip_page, name="clip-page"),
]

handler404 = "clips.api.errors.not_found"
handler500 = "clips.api.errors.server_error"
