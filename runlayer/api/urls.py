from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from agents.api.views import AgentAccountViewSet, DelegationViewSet
from audit.api.views import AuditEventViewSet
from connectors.api.views import CatalogViewSet, ProxyToolsView, ServerViewSet
from policies.api.views import AccessRequestViewSet, GuardSettingsViewSet, PolicyViewSet

from .views import ApiKeyViewSet, MeView, UserSecretViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # the contract has no trailing slash; accept both
router.register("servers", ServerViewSet, basename="server")
router.register("catalog", CatalogViewSet, basename="catalog")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("auditlogs", AuditEventViewSet, basename="auditlog")
router.register("secrets", UserSecretViewSet, basename="secret")
router.register("policies", PolicyViewSet, basename="policy")
router.register("access-requests", AccessRequestViewSet, basename="access-request")
router.register("guard-settings", GuardSettingsViewSet, basename="guard-settings")
router.register("agent-accounts", AgentAccountViewSet, basename="agent-account")
router.register("delegations", DelegationViewSet, basename="delegation")

urlpatterns = [
    path("users/me", MeView.as_view(), name="users-me"),
    path("proxy/<uuid:pk>/tools", ProxyToolsView.as_view(), name="proxy-tools"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include(router.urls)),
]
