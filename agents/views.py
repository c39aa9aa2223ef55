"""The OAuth token endpoint, extended with RFC 8693 token exchange for agent accounts' on-behalf-of tokens.

Everything else (client credentials, authorization code, refresh) is django-oauth-toolkit's, except that a
disabled agent account is refused before a token is minted.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from django.http import HttpRequest, JsonResponse
from oauth2_provider import views as oauth_views

from .models import AgentAccount
from .services import TOKEN_EXCHANGE, TokenError, authenticate_agent, token_exchange


def _client_credentials(request: HttpRequest) -> tuple[str, str]:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
            return unquote_plus(client_id), unquote_plus(secret)
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return request.POST.get("client_id", ""), request.POST.get("client_secret", "")


class TokenView(oauth_views.TokenView):
    def post(self, request: HttpRequest, *args, **kwargs):
        grant = request.POST.get("grant_type")
        try:
            if grant == TOKEN_EXCHANGE:
                account = authenticate_agent(*_client_credentials(request))
                body = token_exchange(
                    account=account,
                    subject_token=request.POST.get("subject_token", ""),
                    subject_token_type=request.POST.get("subject_token_type", ""),
                )
                return JsonResponse(body, headers={"Cache-Control": "no-store"})
            if grant == "client_credentials":
                client_id = _client_credentials(request)[0]
                account = AgentAccount.objects.filter(application__client_id=client_id).first()
                if account is not None and not account.enabled:
                    raise TokenError("invalid_client", f"the agent account {account.name!r} is disabled", 401)
        except TokenError as exc:
            return JsonResponse({"error": exc.error, "error_description": exc.description}, status=exc.status)
        return super().post(request, *args, **kwargs)
