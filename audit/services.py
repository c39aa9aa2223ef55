"""Writing audit events. Management writes are recorded in the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from .models import ActionType, AuditEvent


def _actor_fields(actor: AbstractBaseUser | AnonymousUser | None) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return {"actor": None, "actor_email": "", "actor_name": ""}
    full_name = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    return {
        "actor": actor,
        "actor_email": getattr(actor, "email", "") or "",
        "actor_name": full_name or actor.get_username(),
    }


def audit_event_build(
    *,
    action_type: ActionType | str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    server: Any = None,
    resource_type: str = "",
    resource_name: str = "",
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
    client_name: str = "",
    client_version: str = "",
    correlation_id: str = "",
    duration_ms: float | None = None,
    agent_id: Any = None,
) -> AuditEvent:
    """An unsaved event with snapshots filled in; the batched writer and `audit_record` save it."""
    details = dict(details or {})
    if server is not None:
        details.setdefault("server_name", server.name)
    if resource_name:
        details.setdefault("resource_name", resource_name)
    if client_name:
        details.setdefault("client_name", client_name)
    if correlation_id:
        details.setdefault("correlation_id", correlation_id)
    return AuditEvent(
        timestamp=timezone.now(),
        action_type=str(action_type),
        server_id=server.id if server is not None else None,
        server_name=server.name if server is not None else "",
        resource_type=resource_type,
        resource_name=resource_name[:500],
        details=details,
        ip_address=ip_address,
        client_name=client_name[:200],
        client_version=client_version[:100],
        correlation_id=correlation_id[:64],
        duration_ms=duration_ms,
        agent_id=agent_id,
        **_actor_fields(actor),
    )


def audit_record(**kwargs: Any) -> AuditEvent:
    """Record one event now (for management actions, which are rare and must commit with their change)."""
    event = audit_event_build(**kwargs)
    event.save()
    return event
