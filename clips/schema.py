"""OpenAPI additions drf-spectacular cannot see: the plain Django stream view."""

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ERROR}},
    }


def _stream_operation(method: str) -> dict[str, Any]:
    audio = {"audio/*": {"schema": {"type": "string", "format": "binary"}}}
    return {
        "operationId": f"clips_stream_{method}",
        "summary": "Stream a clip's audio"
        + (" (headers only)" if method == "head" else ""),
        "description": (
            "The web preview (MP3), or with format=original the audio as given. "
            "Honours a single `Range: bytes=…` range. A GET whose answer starts at "
            "byte 0 counts one play; seeks, HEAD, 304 and 416 count none."
        ),
        "tags": ["clips"],
        "parameters": [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {
                    "type": "string",
                    "enum": ["preview", "original"],
                    "default": "preview",
                },
            },
            {
                "name": "Range",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
        "responses": {
            "200": {"description": "The whole audio file.", "content": audio},
            "206": {"description": "The requested byte range.", "content": audio},
            "304": {"description": "Not modified (If-None-Match / If-Modified-Since)."},
            "400": _error("An unknown format."),
            "404": _error(
                "No such clip (or not ready, for listeners), or its audio is missing."
            ),
            "409": _error("A curator asked for a clip whose ingest failed."),
            "416": _error("The range starts past the end of the audio."),
            "429": _error("Too many stream requests; see Retry-After."),
            "502": _error("A remote clip's origin failed or may not be fetched."),
        },
        "security": [{}],
    }


def add_stream_path(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: document GET/HEAD /clips/{id}/stream."""
    result["paths"]["/api/v1/clips/{id}/stream"] = {
        method: _stream_operation(method) for method in ("get", "head")
    }
    return result
