from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

from runlayer.crypto import EncryptedJSONField


class DeploymentMode(models.TextChoices):
    HOSTED = "hosted", "Hosted (reached by the gateway)"
    LOCAL = "local", "Local (run on the user's machine by the CLI)"


class Transport(models.TextChoices):
    STDIO = "stdio", "stdio"
    SSE = "sse", "SSE"
    STREAMING_HTTP = "streaming-http", "Streamable HTTP"


class ConnectorStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class CatalogEntry(models.Model):
    """A template for a connector: a published MCP server an admin can instantiate in one step."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    icon_url = models.URLField(blank=True)
    homepage = models.URLField(blank=True)
    is_official = models.BooleanField(default=False)
    deployment_mode = models.CharField(max_length=16, choices=DeploymentMode.choices)
    transport = models.CharField(max_length=32, choices=Transport.choices)
    url = models.CharField(max_length=2000, help_text="The URL of a hosted server, or the command of a stdio one.")
    args = models.JSONField(default=list, blank=True)
    env = models.JSONField(default=dict, blank=True, help_text="Non-secret environment variables.")
    inherit_env = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "catalog entries"

    def __str__(self) -> str:
        return self.name


class Connector(models.Model):
    """An MCP server registered with Runlayer, hosted (reached by the gateway) or local (run by the CLI)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    icon_url = models.URLField(blank=True)
    status = models.CharField(max_length=16, choices=ConnectorStatus.choices, default=ConnectorStatus.DRAFT)
    deployment_mode = models.CharField(max_length=16, choices=DeploymentMode.choices)
    transport = models.CharField(max_length=32, choices=Transport.choices)
    url = models.CharField(
        max_length=2000, blank=True, help_text="The URL of an HTTP/SSE server, or the command of a stdio one."
    )
    args = models.JSONField(default=list, blank=True)
    env = models.JSONField(default=dict, blank=True, help_text="Non-secret environment variables.")
    # Header values may be credentials: the whole mapping is encrypted at rest.
    headers = EncryptedJSONField(default=dict, blank=True)
    inherit_env = models.JSONField(
        default=list, blank=True, help_text="Names of the user's environment variables a local server may see."
    )
    is_sensitive = models.BooleanField(default=False, help_text="Leave call arguments and results out of audit events.")
    catalog_entry = models.ForeignKey(
        CatalogEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="connectors"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_connectors"
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="connectors")
    groups = models.ManyToManyField(Group, blank=True, related_name="connectors")
    # Bumped on every change of what is run or reached; clients re-read their config when it moves.
    version = models.PositiveIntegerField(default=1)
    capabilities_synced_at = models.DateTimeField(null=True, blank=True)
    capabilities_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The connector version the stored capabilities were taken from."
    )
    last_sync_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Fields whose change alters what is run or reached, and so bumps `version`.
    RUNTIME_FIELDS = ("deployment_mode", "transport", "url", "args", "env", "headers", "inherit_env")

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["status", "deployment_mode"]),
            models.Index(fields=["name"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="connector_name_not_empty"),
            models.CheckConstraint(condition=Q(status__in=ConnectorStatus.values), name="connector_status_valid"),
            models.CheckConstraint(condition=Q(deployment_mode__in=DeploymentMode.values), name="connector_mode_valid"),
            models.CheckConstraint(condition=Q(transport__in=Transport.values), name="connector_transport_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_hosted(self) -> bool:
        return self.deployment_mode == DeploymentMode.HOSTED

    @property
    def sync_required(self) -> bool:
        return self.capabilities_version != self.version


class CapabilityKind(models.TextChoices):
    TOOL = "tool", "Tool"
    RESOURCE = "resource", "Resource"
    RESOURCE_TEMPLATE = "resource_template", "Resource template"
    PROMPT = "prompt", "Prompt"


class ConnectorCapability(models.Model):
    """One tool, resource, resource template or prompt of a connector, as the server last reported it."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="capabilities")
    kind = models.CharField(max_length=24, choices=CapabilityKind.choices)
    name = models.CharField(max_length=500)
    definition = models.JSONField(help_text="The item as received, in MCP wire shape (camelCase).")
    definition_hash = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of the definition.")
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["connector", "kind", "name"]
        verbose_name_plural = "connector capabilities"
        constraints = [
            models.UniqueConstraint(fields=["connector", "kind", "name"], name="capability_unique_per_connector")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"
