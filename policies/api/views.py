from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from connectors.models import Connector
from connectors.selectors import principal_of
from runlayer.permissions import IsAdmin

from .. import services
from ..cache import current_rules
from ..engine import CallContext, decide
from ..filtersets import PolicyFilterSet
from ..models import Policy
from .serializers import DecisionSerializer, PolicySerializer, PolicyTestSerializer


def _service_kwargs(data: dict) -> dict:
    kwargs = dict(data)
    if "users" in kwargs:
        kwargs["users"] = [u.pk for u in kwargs["users"]]
    if "groups" in kwargs:
        kwargs["groups"] = [g.pk for g in kwargs["groups"]]
    return kwargs


class PolicyViewSet(viewsets.ModelViewSet):
    """Allow and deny policies (admins only). ``POST /policies/test`` explains a decision without calling anything."""

    queryset = Policy.objects.select_related("connector").prefetch_related("users", "groups")
    serializer_class = PolicySerializer
    filterset_class = PolicyFilterSet
    permission_classes = [IsAuthenticated, IsAdmin]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.policy_create(actor=request.user, **_service_kwargs(body.validated_data))
        return Response(self.get_serializer(policy).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        policy = self.get_object()
        body = self.get_serializer(policy, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        policy = services.policy_update(policy=policy, actor=request.user, **_service_kwargs(body.validated_data))
        return Response(self.get_serializer(policy).data)

    def destroy(self, request, *args, **kwargs):
        services.policy_delete(policy=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PolicyTestSerializer, responses=DecisionSerializer)
    @action(detail=False, methods=["post"])
    def test(self, request):
        body = PolicyTestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        ref = data["user"]
        lookup = Q(username=ref) | (Q(pk=int(ref)) if ref.isdigit() else Q())
        user = get_user_model().objects.filter(lookup).first()
        if user is None:
            raise ValidationError({"user": f"unknown user: {ref}"})
        if not Connector.objects.filter(pk=data["connector"]).exists():
            raise ValidationError({"connector": "unknown connector"})
        ctx = CallContext(
            principal=principal_of(user),
            connector_id=str(data["connector"]),
            method=data["method"],
            name=data.get("name"),
            arguments=data.get("arguments") or {},
            client_name=data.get("client_name", ""),
            ip=data.get("ip"),
        )
        decision = decide(current_rules(), ctx)
        return Response({"allowed": decision.allowed, "reason": decision.reason, "rule": decision.rule})
