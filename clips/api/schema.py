"""The OpenAPI schema, made to say what the API does (schemathesis checks it).

drf-spectacular cannot see some of it: that anonymous users may read, that DRF's
text fields refuse NUL characters (and curators' text bidi controls), the rules on
audio sources, and the plain Django stream view.
"""

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
)
from rest_framework import permissions, serializers

from clips.api.serializers import ClipUploadInputSerializer, ErrorSerializer
from clips.models import (
    AUDIO_CONTENT_TYPES,
    BIDI_CONTROLS,
    validate_no_bidi_controls,
)

# DRF refuses "\x00" in every CharField (ProhibitNullCharactersValidator); the text
# curators type refuses Unicode's bidi controls too (clips.models).
NUL = r"\x00"
_ERROR = {"$ref": "#/components/schemas/Error"}
_EMPTY_STRING = {"type": "string", "maxLength": 0}


class ClipsAutoSchema(AutoSchema):
    def get_auth(self) -> list[dict[str, list[Any]]]:
        """Reads that anonymous users may make list `{}`: no credentials at all."""
        auths = super().get_auth()
        anonymous_reads = any(
            getattr(permission, "authenticated_users_only", True) is False
            for permission in self.view.get_permissions()
        )
        if anonymous_reads and self.method in permissions.SAFE_METHODS:
            auths.append({})
        return auths

    def _map_serializer_field(
        self, field: serializers.Field, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "enum", "format"} & schema.keys()
        ):
            refused = NUL
            if validate_no_bidi_controls in field.validators:
                refused += BIDI_CONTROLS
            schema["pattern"] = f"^[^{refused}]*$"
        return schema

    def _insert_field_validators(self, field: serializers.Field, schema: dict) -> None:
        """A blank-allowed string is "this, or empty": anyOf, as "" may match both.

        drf-spectacular writes oneOf, which makes "" invalid when it matches both.
        """
        super()._insert_field_validators(field, schema)
        if "oneOf" in schema and schema["oneOf"][-1] == _EMPTY_STRING:
            schema["anyOf"] = schema.pop("oneOf")


class BeaconSessionScheme(SessionScheme):
    """The session as the progress reports use it (no CSRF token): a cookie."""

    target_class = "clips.api.views.BeaconSessionAuthentication"
    name = "beaconCookieAuth"


class ClipInputScheme(OpenApiSerializerExtension):
    """By URL (JSON, form): audio_url is required; empty is no source, a 400."""

    target_class = "clips.api.serializers.ClipInputSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, True)
        url, _empty = schema["properties"]["audio_url"].pop("anyOf")
        schema["properties"]["audio_url"].update(url)
        schema["required"] = sorted({*schema.get("required", []), "audio_url"})
        return schema


class ClipUploadInputScheme(OpenApiSerializerExtension):
    """Multipart uploads the audio; an audio_url, if sent (an HTML form), is empty."""

    target_class = "clips.api.serializers.ClipUploadInputSerializer"

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, True)
        schema["properties"]["audio_url"] = {
            **_EMPTY_STRING,
            "description": "Empty: a clip has one audio source, here the upload.",
        }
        schema["properties"]["audio_file"]["minLength"] = 1  # an empty file is a 400
        return schema


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }


def _header(schema: dict[str, Any], description: str, required: bool = False) -> dict:
    return {"schema": schema, "description": description, "required": required}


_STRING = {"type": "string"}
_BODY_HEADERS = {
    "Content-Length": _header({"type": "integer"}, "Bytes in this response."),
    "Accept-Ranges": _header(_STRING, "`bytes` (a remote origin may say otherwise)."),
    "ETag": _header(_STRING, "Validator for If-None-Match and If-Range."),
    "Last-Modified": _header(_STRING, "Validator for If-Modified-Since and If-Range."),
}
_CONTENT_RANGE = {
    "type": "string",
    "pattern": r"^bytes ([0-9]+-[0-9]+|\*)/([0-9]+|\*)$",
}


def _stream_operation(method: str) -> dict[str, Any]:
    # An uploaded file is served with its format's type; a remote origin's audio
    # type is passed on, anything else it sends becomes application/octet-stream.
    audio = {
        media_type: {"schema": {"type": "string", "format": "binary"}}
        for media_type in ("audio/*", "application/ogg", "application/octet-stream")
    }
    request_headers = {
        "Range": "One `bytes=first-last` range; others are ignored (200).",
        "If-Range": "Honour Range only while the clip still has this ETag or date.",
        "If-None-Match": "An ETag: 304 if it still matches.",
        "If-Modified-Since": "An HTTP date: 304 if not modified since.",
        "If-Match": "ETags: 412 unless one still matches.",
        "If-Unmodified-Since": "An HTTP date: 412 if modified since.",
    }
    return {
        "operationId": f"clips_stream_{method}",
        "summary": "Stream a clip's audio"
        + (" (headers only)" if method == "head" else ""),
        "description": (
            "The preview (an excerpt at one loudness) as MP3, with format=opus as "
            "Ogg Opus (404 until made), or with format=original the audio as given. "
            "Honours a single `Range: bytes=…` range, after the preconditions "
            "(RFC 9110's order). A GET that starts a listen (byte 0, at least 4 KiB "
            "or the whole file) counts one play per listener and clip within the "
            "listen window; seeks, probes, staff, HEAD, 304, 412, 416 and 429 count "
            "none."
        ),
        "tags": ["clips"],
        "parameters": [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
            },
            *(
                {
                    "name": name,
                    "in": "header",
                    "required": False,
                    "schema": _STRING,
                    "description": description,
                }
                for name, description in request_headers.items()
            ),
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "string",
                    "enum": ["preview", "opus", "original"],
                    "default": "preview",
                },
            },
        ],
        "responses": {
            "200": {
                "description": "The whole audio.",
                "content": audio,
                "headers": _BODY_HEADERS,
            },
            "206": {
                "description": "The requested byte range.",
                "content": audio,
                "headers": {
                    **_BODY_HEADERS,
                    "Content-Range": _header(
                        _CONTENT_RANGE, "`bytes first-last/size`.", required=True
                    ),
                },
            },
            "304": {
                "description": "Not modified (If-None-Match / If-Modified-Since).",
                "headers": {name: _BODY_HEADERS[name] for name in ("ETag",)},
            },
            "400": _error("An unknown format."),
            "404": _error(
                "No such clip (or not ready, for listeners), or its audio is missing."
            ),
            "409": _error("A curator asked for a clip whose ingest failed."),
            "412": _error("If-Match or If-Unmodified-Since failed."),
            "416": {
                **_error("The range starts past the end of the audio."),
                "headers": {
                    "Content-Range": _header(_CONTENT_RANGE, "`bytes */size`.")
                },
            },
            "429": {
                **_error("Too many stream requests."),
                "headers": {
                    "Retry-After": _header(
                        {"type": "integer"}, "Seconds to wait.", required=True
                    )
                },
            },
            "502": _error(
                "A remote clip's origin is unreachable, failed, answered too much, "
                "or may not be fetched (see README, Remote audio and SSRF)."
            ),
        },
        "security": [{}],
    }


def add_stream_path(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document GET/HEAD /clips/{id}/stream."""
    result["paths"]["/api/v1/clips/{id}/stream"] = {
        method: _stream_operation(method) for method in ("get", "head")
    }
    return result


# What the API's views declare (clips.api.views).
ERROR_MEANINGS = {
    400: "Invalid input: `fields` says what.",
    401: "A token or session that is not valid, or none where one is needed.",
    403: "Signed in, but without the permission (or a session without CSRF).",
    404: "No such clip, or no such page.",
    409: "The clip is there, but not what was asked of it (no waveform yet).",
    413: "A body over the upload limit, refused by nginx in front before the app.",
    415: "A body of another media type than the ones listed.",
    429: "Too many requests; Retry-After says when to try again.",
    503: "The storage cannot take the upload now (read-only, failing); nothing was "
    "kept, and Retry-After says when to try again.",
    507: "The storage is full: nothing was kept.",
}


def response_header(
    name: str, schema_type: OpenApiTypes, status: int | list[int], description: str
) -> OpenApiParameter:
    """A header every `status` response (or each of a list) carries."""
    return OpenApiParameter(
        name,
        schema_type,
        OpenApiParameter.HEADER,
        required=True,
        response=status if isinstance(status, list) else [status],
        description=description,
    )


# DRF sends these with every 401, 429 and 503.
ERROR_HEADERS = [
    response_header(
        "WWW-Authenticate", OpenApiTypes.STR, 401, "`Token`: how to authenticate."
    ),
    response_header("Retry-After", OpenApiTypes.INT, [429, 503], "Seconds to wait."),
]


def error_responses(
    *statuses: int, meanings: dict[int, str] | None = None
) -> dict[int, OpenApiResponse]:
    """The error responses of `statuses`; `meanings` says what some of them mean
    for this operation instead of ERROR_MEANINGS."""
    meanings = ERROR_MEANINGS | (meanings or {})
    return {
        status: OpenApiResponse(ErrorSerializer, description=meanings[status])
        for status in statuses
    }


def upload_body() -> OpenApiRequest:
    """Multipart: the audio part's Content-Type names its format (see clip_create)."""
    audio_types = ", ".join(sorted(set(AUDIO_CONTENT_TYPES.values())))
    return OpenApiRequest(
        ClipUploadInputSerializer, encoding={"audio_file": {"contentType": audio_types}}
    )
