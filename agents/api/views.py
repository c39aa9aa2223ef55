"""``/api/v1/agent-accounts`` (admins) and ``/api/v1/delegations`` (each user's own)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from runlayer.permissions import IsAdmin

from ..models import AgentAccount, Delegation
from ..services import (
    agent_account_create,
    agent_account_delete,
    agent_account_set_enabled,
    delegation_grant,
    delegation_revoke,
)
from .serializers import AgentAccountSerializer, DelegationSerializer, NewAgentAccountSerializer


class AgentAccountViewSet(viewsets.ModelViewSet):
    """Agent accounts authenticate with OAuth client credentials at ``/api/v1/oauth/token``."""

    serializer_class = AgentAccountSerializer
    permission_classes = [IsAdmin]
    queryset = AgentAccount.objects.select_related("application", "owner")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(responses={201: NewAgentAccountSerializer})
    def create(self, request):
        body = AgentAccountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            new = agent_account_create(
                name=body.validated_data["name"],
                description=body.validated_data.get("description", ""),
                actor=request.user,
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        if body.validated_data.get("enabled") is False:
            agent_account_set_enabled(account=new.account, enabled=False, actor=request.user)
        data = NewAgentAccountSerializer(new.account).data
        data["client_secret"] = new.client_secret
        return Response(data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        account = self.get_object()
        body = AgentAccountSerializer(account, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "name" in body.validated_data and body.validated_data["name"] != account.name:
            raise ValidationError({"name": ["an agent account cannot be renamed; create a new one"]})
        if "description" in body.validated_data:
            account.description = body.validated_data["description"]
            account.save(update_fields=["description", "updated_at"])
        if "enabled" in body.validated_data:
            agent_account_set_enabled(account=account, enabled=body.validated_data["enabled"], actor=request.user)
        return Response(AgentAccountSerializer(account).data)

    def destroy(self, request, pk=None):
        agent_account_delete(account=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DelegationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The caller's delegations: which agent accounts may act on their behalf (token exchange)."""

    serializer_class = DelegationSerializer
    queryset = Delegation.objects.none()

    def get_queryset(self):
        return Delegation.objects.filter(user=self.request.user).select_related("agent", "user")

    def create(self, request):
        body = DelegationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        delegation = delegation_grant(user=request.user, account=body.validated_data["agent"])
        return Response(DelegationSerializer(delegation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        delegation_revoke(delegation=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
