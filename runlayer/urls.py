from __future__ import annotations

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView

from .views import protected_resource_metadata


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("runlayer.api.urls")),
    path(".well-known/oauth-protected-resource", protected_resource_metadata, name="oauth-protected-resource"),
    path("healthz", healthz),
]
