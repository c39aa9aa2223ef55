from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


def protected_resource_metadata(request):
    """RFC 9728 metadata: what this resource is and which authorization server issues its tokens."""
    return JsonResponse(
        {
            "resource": settings.PUBLIC_URL,
            "authorization_servers": [settings.PUBLIC_URL],
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(settings.OAUTH2_PROVIDER["SCOPES"]),
            "resource_name": "Runlayer",
        }
    )
