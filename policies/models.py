from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q


class Effect(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class Policy(models.Model):
    """An allow or deny rule, for one connector or (deny only) for every connector.

    Who: listed users and groups, or everyone. What: the whole connector, or named tools, resources and
    prompts (exact names or globs such as ``delete_*``). When: optional conditions on the call's
    arguments, the MCP client's name and the caller's IP address. Any matching deny wins; a user needs an
    assignment to the connector or a matching allow.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    effect = models.CharField(max_length=8, choices=Effect.choices)
    connector = models.ForeignKey(
        "connectors.Connector",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="policies",
        help_text="Empty: a global policy, applied to every connector (deny only).",
    )
    everyone = models.BooleanField(default=False, help_text="Applies to every caller.")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="policies")
    groups = models.ManyToManyField(Group, blank=True, related_name="policies")
    agents = models.ManyToManyField("agents.AgentAccount", blank=True, related_name="policies")
    tools = models.JSONField(
        default=list, blank=True, help_text="Tool names or globs; empty with no resources/prompts: all."
    )
    resources = models.JSONField(default=list, blank=True, help_text="Resource URIs or globs.")
    prompts = models.JSONField(default=list, blank=True, help_text="Prompt names or globs.")
    conditions = models.JSONField(
        default=list,
        blank=True,
        help_text='All must hold, e.g. [{"path": "path", "op": "begins_with", "value": "/tmp/"}].',
    )
    client_names = models.JSONField(default=list, blank=True, help_text="MCP client names or globs; empty: any.")
    ip_ranges = models.JSONField(default=list, blank=True, help_text="CIDR ranges; empty: any address.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector__name", "name"]
        verbose_name_plural = "policies"
        indexes = [models.Index(fields=["connector", "enabled"])]
        constraints = [
            models.CheckConstraint(condition=Q(effect__in=Effect.values), name="policy_effect_valid"),
            models.CheckConstraint(
                condition=Q(connector__isnull=False) | Q(effect=Effect.DENY), name="policy_global_is_deny"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="policy_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class AccessRequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class AccessRequest(models.Model):
    """A user asks for a connector (optionally only some of its tools); an admin approves or rejects."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests")
    connector = models.ForeignKey("connectors.Connector", on_delete=models.CASCADE, related_name="access_requests")
    tools = models.JSONField(default=list, blank=True, help_text="Only these tools; empty: the whole connector.")
    reason = models.TextField()
    state = models.CharField(max_length=16, choices=AccessRequestState.choices, default=AccessRequestState.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    granted_policy = models.ForeignKey(Policy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "-created_at"]), models.Index(fields=["requester", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "connector"],
                condition=Q(state="pending"),
                name="accessrequest_one_pending_per_connector",
            ),
            models.CheckConstraint(condition=Q(state__in=AccessRequestState.values), name="accessrequest_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.requester} → {self.connector} ({self.state})"


class WebhookEndpoint(models.Model):
    """Where signed notifications are posted (HMAC-SHA256 of the body with the endpoint's secret)."""

    EVENTS = ("access_request_created", "access_request_approved", "access_request_rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=200, help_text="Shared secret for the X-Runlayer-Signature header.")
    events = models.JSONField(default=list, blank=True, help_text="Event names to send; empty: all.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return self.enabled and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    """One attempt series to deliver one event to one endpoint: the delivery log."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, default="pending")  # pending | delivered | failed
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"


class GuardAction(models.TextChoices):
    BLOCK = "block", "Block"
    MASK = "mask", "Mask"
    ALERT = "alert", "Alert"
    ALLOW = "allow", "Allow"


class GuardSettings(models.Model):
    """ToolGuard actions per scanner: one row without a connector holds the defaults, a row per connector
    overrides them. Masking applies to secrets and PII only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connector = models.OneToOneField(
        "connectors.Connector", null=True, blank=True, on_delete=models.CASCADE, related_name="guard_settings"
    )
    secrets_action = models.CharField(max_length=8, choices=GuardAction.choices, default=GuardAction.MASK)
    pii_action = models.CharField(max_length=8, choices=GuardAction.choices, default=GuardAction.ALERT)
    injection_action = models.CharField(max_length=8, choices=GuardAction.choices, default=GuardAction.BLOCK)
    hidden_action = models.CharField(max_length=8, choices=GuardAction.choices, default=GuardAction.ALERT)
    definition_action = models.CharField(
        max_length=8, choices=GuardAction.choices, default=GuardAction.BLOCK, help_text="For poisoned tool definitions."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "guard settings"
        constraints = [
            models.UniqueConstraint(
                fields=["connector"], condition=Q(connector__isnull=True), name="guardsettings_one_global_row"
            ),
            models.CheckConstraint(
                condition=~Q(injection_action="mask") & ~Q(hidden_action="mask") & ~Q(definition_action="mask"),
                name="guardsettings_mask_only_data",
            ),
        ]

    def __str__(self) -> str:
        return f"ToolGuard for {self.connector or 'every connector'}"


class PinStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    CHANGED = "changed", "Changed since approval (blocked)"
    FLAGGED = "flagged", "Flagged by ToolGuard (blocked)"


class ToolPin(models.Model):
    """The approved definition of one tool of one connector, by hash of its canonical JSON.

    A tool seen for the first time is approved unless ToolGuard flags it (then it is blocked when the
    definition action is "block"). A later definition with another hash blocks the tool until an admin
    approves the new one: a rug pull cannot slip in.
    """

    id = models.BigAutoField(primary_key=True)
    connector = models.ForeignKey("connectors.Connector", on_delete=models.CASCADE, related_name="tool_pins")
    name = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=PinStatus.choices)
    approved_hash = models.CharField(max_length=64, blank=True)
    approved_definition = models.JSONField(null=True, blank=True)
    current_hash = models.CharField(max_length=64)
    current_definition = models.JSONField()
    findings = models.JSONField(default=list, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector", "name"]
        constraints = [models.UniqueConstraint(fields=["connector", "name"], name="toolpin_unique_per_connector")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
