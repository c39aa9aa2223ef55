"""DRF authentication by API key: ``x-runlayer-api-key: rl_…`` or ``Authorization: Bearer rl_…``."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework import authentication, exceptions

from .services import api_key_authenticate


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def key_from_request(request: HttpRequest) -> str | None:
    key = request.META.get("HTTP_X_RUNLAYER_API_KEY")
    if key:
        return key.strip()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith("rl_"):
        return value.strip()
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        if "access_token" in request.query_params:
            raise exceptions.AuthenticationFailed("credentials are accepted in headers only, not in the URL")
        key = key_from_request(request._request)
        if key is None:
            return None
        api_key = api_key_authenticate(key, ip_address=client_ip(request._request))
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked API key")
        return (api_key.user, api_key)

    def authenticate_header(self, request) -> str:
        from django.conf import settings

        return f'Bearer resource_metadata="{settings.PUBLIC_URL}/.well-known/oauth-protected-resource"'
