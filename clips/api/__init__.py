"""The JSON API under /api/v1: views, serializers, query filters, the OpenAPI
schema, rate limits, CORS and the one JSON error shape every answer uses."""
