from __future__ import annotations

from dataclasses import replace

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from agents.models import AgentAccount
from connectors.models import Connector
from connectors.selectors import is_admin, principal_of
from runlayer.cache_version import bump_config_version
from runlayer.permissions import IsAdmin

from .. import services
from ..access_requests import (
    access_request_approve,
    access_request_create,
    access_request_reject,
    access_request_withdraw,
)
from ..cache import current_rules
from ..engine import CallContext, Principal, decide
from ..filtersets import PolicyFilterSet
from ..models import AccessRequest, GuardSettings, Policy
from .serializers import (
    AccessRequestSerializer,
    DecisionNoteSerializer,
    DecisionSerializer,
    GuardSettingsSerializer,
    PolicySerializer,
    PolicyTestSerializer,
)


def _service_kwargs(data: dict) -> dict:
    kwargs = dict(data)
    if "users" in kwargs:
        kwargs["users"] = [u.pk for u in kwargs["users"]]
    if "groups" in kwargs:
        kwargs["groups"] = [g.pk for g in kwargs["groups"]]
    if "agents" in kwargs:
        kwargs["agents"] = [str(a.pk) for a in kwargs["agents"]]
    return kwargs


class PolicyViewSet(viewsets.ModelViewSet):
    """Allow and deny policies (admins only). ``POST /policies/test`` explains a decision without calling anything."""

    queryset = Policy.objects.select_related("connector").prefetch_related("users", "groups", "agents")
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
        if not data.get("user") and not data.get("agent"):
            raise ValidationError({"user": "name a user, an agent account, or both (an agent acting for a user)"})
        principal = Principal(user_id=None)
        if data.get("user"):
            ref = data["user"]
            lookup = Q(username=ref) | (Q(pk=int(ref)) if ref.isdigit() else Q())
            user = get_user_model().objects.filter(lookup).first()
            if user is None:
                raise ValidationError({"user": f"unknown user: {ref}"})
            principal = principal_of(user)
        if data.get("agent"):
            agent = AgentAccount.objects.filter(name=data["agent"]).first()
            if agent is None:
                raise ValidationError({"agent": f"unknown agent account: {data['agent']}"})
            principal = replace(principal, agent_id=str(agent.id), is_admin=False)
        if not Connector.objects.filter(pk=data["connector"]).exists():
            raise ValidationError({"connector": "unknown connector"})
        ctx = CallContext(
            principal=principal,
            connector_id=str(data["connector"]),
            method=data["method"],
            name=data.get("name"),
            arguments=data.get("arguments") or {},
            client_name=data.get("client_name", ""),
            ip=data.get("ip"),
        )
        decision = decide(current_rules(), ctx)
        return Response({"allowed": decision.allowed, "reason": decision.reason, "rule": decision.rule})


class AccessRequestViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Requests for access. Users see and withdraw their own; admins see all and approve or reject."""

    serializer_class = AccessRequestSerializer
    queryset = AccessRequest.objects.none()
    filterset_fields = ["state", "connector"]

    def get_queryset(self):
        qs = AccessRequest.objects.select_related("requester", "connector", "decided_by")
        return qs if is_admin(self.request.user) else qs.filter(requester=self.request.user)

    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        connector = body.validated_data["connector"]
        if connector.status != "active":
            raise ValidationError({"connector": "only active connectors can be requested"})
        created = access_request_create(
            requester=request.user,
            connector=connector,
            reason=body.validated_data.get("reason", ""),
            tools=body.validated_data.get("tools"),
        )
        return Response(self.get_serializer(created).data, status=status.HTTP_201_CREATED)

    def _decision(self, request, fn):
        body = DecisionNoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        decided = fn(request=self.get_object(), actor=request.user, note=body.validated_data["note"])
        return Response(self.get_serializer(decided).data)

    @extend_schema(request=DecisionNoteSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsAdmin])
    def approve(self, request, pk=None):
        return self._decision(request, access_request_approve)

    @extend_schema(request=DecisionNoteSerializer, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, IsAdmin])
    def reject(self, request, pk=None):
        return self._decision(request, access_request_reject)

    @extend_schema(request=None, responses=AccessRequestSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        withdrawn = access_request_withdraw(request=self.get_object(), actor=request.user)
        return Response(self.get_serializer(withdrawn).data)


class GuardSettingsViewSet(viewsets.ModelViewSet):
    """ToolGuard actions: the row without a connector is the default, a row per connector overrides it."""

    queryset = GuardSettings.objects.select_related("connector")
    serializer_class = GuardSettingsSerializer
    permission_classes = [IsAuthenticated, IsAdmin]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["connector"]

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()
            transaction.on_commit(bump_config_version)

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()
            transaction.on_commit(bump_config_version)

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()
            transaction.on_commit(bump_config_version)
