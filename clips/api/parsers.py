"""The API's JSON parser: DRF's, with a body nested too deeply refused as a 400."""

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, which lets json.load's RecursionError through as a 500.

    A body nested deeper than Python's recursion limit (100,000 `[`, a few
    hundred kilobytes) is malformed JSON to a client, so it is answered as such.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class BeaconParser(JSONParser):
    """JSON sent as text/plain: what navigator.sendBeacon sends for a string, so
    that a page reports progress without a CORS preflight."""

    media_type = "text/plain"
