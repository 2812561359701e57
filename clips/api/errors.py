"""One JSON error shape for the whole API: {"code", "detail", "fields"?}."""

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler

from clips.files import storage

# Seconds a client is asked to wait before sending an upload the storage failed.
STORAGE_RETRY_AFTER_SECONDS = 30


def error_body(*, code: str, detail: str, fields: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def json_error(
    status: int, *, code: str, detail: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    """Error response for the plain Django views (stream, 404/500 handlers)."""
    return JsonResponse(
        error_body(code=code, detail=detail), status=status, headers=headers
    )


def method_not_allowed(request: HttpRequest) -> JsonResponse:
    """405 for the plain Django views and probes that only read (GET, HEAD)."""
    return json_error(
        405,
        code="method_not_allowed",
        detail=f"Method {request.method} not allowed.",
        headers={"Allow": "GET, HEAD"},
    )


class StorageFailedError(exceptions.APIException):
    """A service's StorageFailed: 507 if the storage is full, else 503, to retry."""

    def __init__(self, failed: storage.StorageFailed) -> None:
        full = isinstance(failed, storage.StorageFull)
        self.status_code = 507 if full else 503
        self.wait = None if full else STORAGE_RETRY_AFTER_SECONDS  # Retry-After
        super().__init__(detail=str(failed), code=failed.code)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: a service's Django ValidationError is a 400 too, and
    its StorageFailed a 507 or 503."""
    if isinstance(exc, storage.StorageFailed):
        exc = StorageFailedError(exc)
    elif isinstance(exc, DjangoValidationError):
        fields = as_serializer_error(exc)
        if NON_FIELD_ERRORS in fields:
            fields[api_settings.NON_FIELD_ERRORS_KEY] = fields.pop(NON_FIELD_ERRORS)
        exc = exceptions.ValidationError(fields)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            code="invalid", detail="Invalid input.", fields=_as_fields(response.data)
        )
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(
            code=codes if isinstance(codes, str) else "error",
            detail=str(response.data.get("detail", exc)),
        )
    return response


def _as_fields(data: Any) -> dict[str, list[str]]:
    """Each field's messages as a flat list of strings, as the schema says.

    A list field's errors come from DRF keyed by position ({"0": [...]}, nested for
    lists of lists); each message keeps its place as a prefix ("[2][1] ...").
    """
    if not isinstance(data, dict):
        data = {"non_field_errors": data}
    return {name: _messages(errors) for name, errors in data.items()}


def _messages(errors: Any, place: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [
            message
            for key, nested in errors.items()
            for message in _messages(nested, f"{place}[{key}]")
        ]
    if isinstance(errors, list):
        return [message for nested in errors for message in _messages(nested, place)]
    return [f"{place} {errors}" if place else str(errors)]


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under /api/, Django's page elsewhere."""
    if is_api(request):
        return json_error(404, code="not_found", detail="Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/, Django's page elsewhere."""
    if is_api(request):
        return json_error(500, code="server_error", detail="Internal server error.")
    return defaults.server_error(request)
