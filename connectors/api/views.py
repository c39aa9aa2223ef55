from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from policies.cache import current_rules
from policies.engine import CallContext, may_see
from runlayer.permissions import IsAdmin, IsAdminOrReadOnly

from .. import services
from ..capabilities import CapabilityFetchError
from ..filtersets import CatalogEntryFilterSet, ConnectorFilterSet
from ..install import install_material
from ..models import CapabilityKind, CatalogEntry
from ..selectors import connectors_visible_to, principal_of
from .serializers import (
    CapabilitySerializer,
    CatalogEntrySerializer,
    InstantiateSerializer,
    ServerAccessSerializer,
    ServerSerializer,
    ServerWriteSerializer,
)

SCOPES = ("accessible", "accessible_and_mine", "all")


@extend_schema(
    parameters=[OpenApiParameter("scope", str, enum=SCOPES, description="Which connectors to list.")],
)
class ServerViewSet(viewsets.ModelViewSet):
    serializer_class = ServerSerializer
    filterset_class = ConnectorFilterSet
    permission_classes = [IsAuthenticated, IsAdminOrReadOnly]
    http_method_names = ["get", "post", "patch", "put", "delete", "head", "options"]

    def get_queryset(self):
        scope = self.request.query_params.get("scope") or "accessible"
        if scope not in SCOPES:
            raise ValidationError({"scope": f"must be one of {', '.join(SCOPES)}"})
        if self.action != "list":
            scope = "all"  # an item the caller may see at all; admins any, others assigned or owned
        return connectors_visible_to(self.request.user, scope=scope)

    def update(self, request, *args, **kwargs):  # PUT on the item is not offered; PATCH is.
        if not kwargs.get("partial"):
            return Response({"detail": "use PATCH to change a connector"}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return super().update(request, *args, **kwargs)

    @extend_schema(request=ServerWriteSerializer, responses=ServerSerializer)
    def create(self, request, *args, **kwargs):
        write = ServerWriteSerializer(data=request.data)
        write.is_valid(raise_exception=True)
        connector = services.connector_create(actor=request.user, **write.to_service_kwargs())
        return Response(self.get_serializer(connector).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ServerWriteSerializer, responses=ServerSerializer)
    def partial_update(self, request, *args, **kwargs):
        connector = self.get_object()
        write = ServerWriteSerializer(data=request.data, partial=True)
        write.is_valid(raise_exception=True)
        connector = services.connector_update(
            connector=connector, actor=request.user, **write.to_service_kwargs(current=connector)
        )
        return Response(self.get_serializer(connector).data)

    def destroy(self, request, *args, **kwargs):
        services.connector_delete(connector=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["PUT"], request=ServerAccessSerializer, responses=ServerAccessSerializer)
    @extend_schema(methods=["GET"], responses=ServerAccessSerializer)
    @action(detail=True, methods=["get", "put"], permission_classes=[IsAuthenticated, IsAdmin])
    def access(self, request, pk=None):
        connector = self.get_object()
        if request.method == "PUT":
            body = ServerAccessSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            if "users" not in body.validated_data and "groups" not in body.validated_data:
                raise ValidationError({"detail": "give users, groups or both"})
            services.connector_set_access(
                connector=connector,
                actor=request.user,
                users=body.validated_data.get("users"),
                groups=body.validated_data.get("groups"),
            )
        return Response(
            {
                "users": sorted(u.get_username() for u in connector.users.all()),
                "groups": sorted(g.name for g in connector.groups.all()),
            }
        )

    @extend_schema(responses=inline_serializer("InstallMaterial", {"clients": serializers.DictField()}))
    @action(detail=True, methods=["get"])
    def install(self, request, pk=None):
        connector = self.get_object()
        return Response(install_material(connector))

    @extend_schema(responses=CapabilitySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def capabilities(self, request, pk=None):
        connector = self.get_object()
        return Response(CapabilitySerializer(connector.capabilities.all(), many=True).data)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "SyncResult",
            {
                "added": serializers.ListField(child=serializers.CharField()),
                "changed": serializers.ListField(child=serializers.CharField()),
                "removed": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsAdmin])
    def sync(self, request, pk=None):
        connector = self.get_object()
        try:
            changes = services.connector_sync_capabilities(connector=connector, actor=request.user)
        except CapabilityFetchError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
        return Response(changes.as_dict())


class CatalogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = CatalogEntry.objects.all()
    serializer_class = CatalogEntrySerializer
    filterset_class = CatalogEntryFilterSet

    @extend_schema(request=InstantiateSerializer, responses=ServerSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsAdmin])
    def instantiate(self, request, pk=None):
        entry = self.get_object()
        body = InstantiateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        connector = services.catalog_entry_instantiate(
            entry=entry, actor=request.user, name=body.validated_data.get("name")
        )
        return Response(ServerSerializer(connector, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProxyToolsView(APIView):
    """``GET /api/v1/proxy/{id}/tools``: the connector's tools the caller may use, from its last capability sync."""

    @extend_schema(
        responses=inline_serializer(
            "ProxyTool", {"name": serializers.CharField(), "description": serializers.CharField()}, many=True
        )
    )
    def get(self, request, pk):
        connector = get_object_or_404(connectors_visible_to(request.user, scope="all"), pk=pk)
        principal = principal_of(request.user)
        ctx = CallContext(principal=principal, connector_id=str(connector.id), method="tools/call")
        tools = {c.name: c.definition for c in connector.capabilities.filter(kind=CapabilityKind.TOOL)}
        allowed = may_see(current_rules(), ctx, sorted(tools))
        return Response([{"name": name, "description": tools[name].get("description", "")} for name in allowed])
