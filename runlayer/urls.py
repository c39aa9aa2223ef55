from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from oauth2_provider import views as oauth_views

from agents import views as agent_views

from . import device_views


def healthz(request):
    return JsonResponse({"status": "ok"})


# django-oauth-toolkit's views, with the token endpoint at the contract's /api/v1/oauth/token and the
# RFC 8414 / RFC 9728 metadata documents at the origin's root.
oauth_urlpatterns = [
    re_path(r"^api/v1/oauth/authorize/?$", oauth_views.AuthorizationView.as_view(), name="authorize"),
    re_path(r"^api/v1/oauth/token/?$", agent_views.TokenView.as_view(), name="token"),
    re_path(r"^api/v1/oauth/revoke/?$", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
    re_path(r"^api/v1/oauth/introspect/?$", oauth_views.IntrospectTokenView.as_view(), name="introspect"),
    re_path(r"^api/v1/oauth/register/?$", oauth_views.DynamicClientRegistrationView.as_view(), name="dcr-register"),
    path(
        "api/v1/oauth/register/<str:client_id>/",
        oauth_views.DynamicClientRegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
    path(
        ".well-known/oauth-authorization-server",
        oauth_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/oauth-authorization-server/<path:issuer_path>",
        oauth_views.OAuthServerMetadataView.as_view(),
        name="oauth-server-metadata-issuer",
    ),
    path(
        ".well-known/oauth-protected-resource",
        oauth_views.OAuthProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource/<path:resource_path>",
        oauth_views.OAuthProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata-path",
    ),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    re_path(r"^api/v1/cli/device/authorize/?$", device_views.authorize, name="device-authorize"),
    re_path(r"^api/v1/cli/device/token/?$", device_views.token, name="device-token"),
    path("device", device_views.page, name="device-page"),
    path("api/v1/", include("runlayer.api.urls")),
    path("", include((oauth_urlpatterns, "oauth2_provider"))),
    path("healthz", healthz),
]
