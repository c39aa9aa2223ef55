"""Agent accounts: non-human callers that authenticate with OAuth client credentials.

An account owns one django-oauth-toolkit application (confidential, client-credentials grant only; its
secret is stored hashed and shown once). Policies name agent accounts as principals. A user may delegate
to an account; the account can then exchange the user's token for an on-behalf-of token (RFC 8693) whose
calls must be allowed for both the account and the user.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class AgentAccount(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.PROTECT, related_name="agent_account"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent_accounts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=~Q(name=""), name="agent_account_name_not_empty")]

    def __str__(self) -> str:
        return self.name

    @property
    def client_id(self) -> str:
        return self.application.client_id


class Delegation(models.Model):
    """A user's consent that an agent account may act on their behalf (until revoked)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations")
    agent = models.ForeignKey(AgentAccount, on_delete=models.CASCADE, related_name="delegations")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "agent"], condition=Q(revoked_at__isnull=True), name="one_active_delegation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.agent}"
