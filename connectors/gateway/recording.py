"""Exactly one audit event per gateway request, handed to the batched writer as a plain dict."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from audit.models import ActionType
from audit.writer import get_writer

from .protocol import AUDIT_ACTIONS, RESOURCE_TYPES, Exchange, capped


def audit_call(ex: Exchange, method: str, arguments: Any, result: Any, *, error: tuple[str, str] | None) -> None:
    details: dict[str, Any] = {}
    sensitive = ex.connector is not None and ex.connector.is_sensitive
    if method == "tools/call":
        action = ActionType.TOOL_CALL_FAILURE if error else ActionType.TOOL_CALL_SUCCESS
        if not sensitive:
            details["arguments"] = capped(arguments)
            if result is not None:
                details["result"] = capped(result)
        else:
            details["redacted"] = True
    else:
        action = AUDIT_ACTIONS.get(method, ActionType.TOOL_CALL_FAILURE if error else ActionType.TOOL_CALL_SUCCESS)
        if method == "tools/list" and isinstance(result, dict):
            details["tool_count"] = len(result.get("tools") or [])
    if error:
        details["upstream_error"] = {"type": error[0], "message": error[1]}
    if ex.findings:
        details["findings"] = ex.findings[:20]
    audit(ex, action, details=details)


def audit(ex: Exchange, action: str, *, details: dict[str, Any]) -> None:
    if ex.guard_ms:
        details.setdefault("toolguard_ms", round(ex.guard_ms, 3))
    submit(ex, action, details=details)


def submit(ex: Exchange, action: str, *, details: dict[str, Any]) -> None:
    """Hand one event to the batched writer (a plain dict: the model is built off the event loop)."""
    identity = ex.identity
    principal = identity.principal if identity else None
    server_name = ex.connector.name if ex.connector is not None else ""
    details.setdefault("method", ex.method)
    details.setdefault("protocol_version", ex.protocol_version)
    details.setdefault("correlation_id", ex.correlation_id)
    if server_name:
        details.setdefault("server_name", server_name)
    if ex.item_name:
        details.setdefault("resource_name", ex.item_name)
    if ex.client_name:
        details.setdefault("client_name", ex.client_name)
    get_writer().submit(
        {
            "timestamp": datetime.now(UTC),
            "action_type": str(action),
            "actor_id": principal.user_id if principal else None,
            "actor_email": principal.email if principal else "",
            "actor_name": identity.display_name if identity else "",
            "agent_id": principal.agent_id if principal else None,
            "server_id": uuid.UUID(ex.connector_id) if ex.connector_id else None,
            "server_name": server_name,
            "resource_type": RESOURCE_TYPES.get(ex.method, "server"),
            "resource_name": ex.item_name,
            "client_name": ex.client_name[:200],
            "client_version": ex.client_version[:100],
            "correlation_id": ex.correlation_id,
            "ip_address": ex.ip,
            "duration_ms": round((time.perf_counter() - ex.started) * 1000, 3),
            "details": details,
        }
    )
