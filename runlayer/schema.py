"""OpenAPI description of our authentication, so the schema (and Swagger's "Authorize") shows it."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "runlayer.authentication.ApiKeyAuthentication"
    name = ["ApiKeyHeader", "ApiKeyBearer"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "x-runlayer-api-key"},
            {"type": "http", "scheme": "bearer", "bearerFormat": "rl_…"},
        ]
