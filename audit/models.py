from __future__ import annotations

from django.conf import settings
from django.db import models


class ActionType(models.TextChoices):
    # auth
    AUTH_SUCCESS = "auth_success"
    AUTH_FAILED = "auth_failed"
    PROXY_OAUTH_TOKEN_ISSUED = "proxy_oauth_token_issued"
    PROXY_OAUTH_AUTHORIZATION_FAILED = "proxy_oauth_authorization_failed"
    CLIENT_TOKEN_REFRESH_FAILURE = "client_token_refresh_failure"
    UPSTREAM_TOKEN_REFRESH_SUCCESS = "upstream_token_refresh_success"
    UPSTREAM_TOKEN_REFRESH_FAILURE = "upstream_token_refresh_failure"
    OAUTH_CONNECTED = "oauth_connected"
    OAUTH_REVOKED = "oauth_revoked"
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    # tools and other MCP traffic
    TOOL_CALL_SUCCESS = "tool_call_success"
    TOOL_CALL_FAILURE = "tool_call_failure"
    TOOLS_LIST = "tools_list"
    RESOURCES_LIST = "resources_list"
    RESOURCE_READ = "resource_read"
    PROMPTS_LIST = "prompts_list"
    PROMPT_GET = "prompt_get"
    # security
    SECURITY_VIOLATION = "security_violation"
    ACCESS_DENIED = "access_denied"
    SECURITY_DECISION = "security_decision"
    # servers
    SERVER_CREATED = "server_created"
    SERVER_UPDATED = "server_updated"
    SERVER_DELETED = "server_deleted"
    SERVER_APPROVED = "server_approved"
    SERVER_REJECTED = "server_rejected"
    SERVER_DISABLED = "server_disabled"
    SERVER_ENABLED = "server_enabled"
    SERVER_ACCESS_CHANGED = "server_access_changed"
    SERVER_CAPABILITIES_SYNCED = "server_capabilities_synced"
    # agents
    AGENT_CREATED = "agent_created"
    AGENT_UPDATED = "agent_updated"
    AGENT_DELETED = "agent_deleted"
    AGENT_ACCOUNT_CREATED = "agent_account_created"
    AGENT_ACCOUNT_ENABLED = "agent_account_enabled"
    AGENT_ACCOUNT_DISABLED = "agent_account_disabled"
    AGENT_ACCOUNT_DELETED = "agent_account_deleted"
    AGENT_ACCOUNT_TOKEN_EXCHANGE_SUCCESS = "agent_account_token_exchange_success"
    AGENT_ACCOUNT_TOKEN_EXCHANGE_DENIED = "agent_account_token_exchange_denied"
    # policies
    POLICY_CREATED = "policy_created"
    POLICY_UPDATED = "policy_updated"
    POLICY_DELETED = "policy_deleted"
    # access requests
    ACCESS_REQUEST_CREATED = "access_request_created"
    ACCESS_REQUEST_APPROVED = "access_request_approved"
    ACCESS_REQUEST_REJECTED = "access_request_rejected"
    ACCESS_REQUEST_WITHDRAWN = "access_request_withdrawn"


class AppendOnlyError(Exception):
    pass


class AuditEvent(models.Model):
    """One thing that happened. Append-only: rows are inserted, never updated or deleted by the application.

    The actor and the server are kept both as references (for filtering) and as snapshots of their names
    (so an event still reads right after the user or connector is renamed or deleted).
    """

    id = models.BigAutoField(primary_key=True)
    timestamp = models.DateTimeField(db_index=True)
    action_type = models.CharField(max_length=64, choices=ActionType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    actor_email = models.CharField(max_length=254, blank=True)
    actor_name = models.CharField(max_length=300, blank=True)
    agent_id = models.UUIDField(null=True, blank=True)
    server_id = models.UUIDField(null=True, blank=True)
    server_name = models.CharField(max_length=200, blank=True)
    resource_type = models.CharField(max_length=32, blank=True, help_text="tool, resource, prompt, server, api_key…")
    resource_name = models.CharField(max_length=500, blank=True)
    client_name = models.CharField(max_length=200, blank=True)
    client_version = models.CharField(max_length=100, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["action_type", "-id"], name="audit_action_idx"),
            models.Index(fields=["actor", "-id"], name="audit_actor_idx"),
            models.Index(fields=["server_id", "-id"], name="audit_server_idx"),
            models.Index(fields=["agent_id", "-id"], name="audit_agent_idx"),
            models.Index(fields=["client_name", "-id"], name="audit_client_idx"),
            models.Index(fields=["correlation_id"], name="audit_correlation_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.action_type}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only")
