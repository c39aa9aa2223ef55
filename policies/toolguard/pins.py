"""The Tool List Guard: pin each tool's definition and block rug pulls and poisoned definitions."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import ActionType
from audit.services import audit_record
from connectors.capabilities import definition_hash
from runlayer.cache_version import bump_config_version

from ..models import PinStatus, ToolPin
from .detectors import scan_tool_definition

logger = logging.getLogger(__name__)
FLAG_SCORE = 0.6


def other_tool_names(connector) -> list[str]:
    from connectors.models import CapabilityKind, ConnectorCapability

    return list(
        ConnectorCapability.objects.filter(kind=CapabilityKind.TOOL)
        .exclude(connector=connector)
        .values_list("name", flat=True)
        .distinct()[:5000]
    )


def tool_pins_observe(*, connector, tools: Mapping[str, dict[str, Any]], definition_action: str = "block") -> dict:
    """Compare tool definitions as the server reports them with their pins; create, flag or block.

    Returns ``{"new": [...], "changed": [...], "flagged": [...]}`` (names). Audits every tool that ends up
    blocked, and invalidates the decision caches when anything changed.
    """
    others = other_tool_names(connector)
    for attempt in range(3):
        try:
            return _observe(connector, tools, definition_action, others)
        except IntegrityError:
            # Another worker pinned a new tool at the same moment (absent rows cannot be locked): look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _observe(connector, tools: Mapping[str, dict[str, Any]], definition_action: str, others: list[str]) -> dict:
    report: dict[str, list[str]] = {"new": [], "changed": [], "flagged": []}
    with transaction.atomic():
        pins = {p.name: p for p in ToolPin.objects.select_for_update().filter(connector=connector)}
        for name, definition in tools.items():
            digest = definition_hash(definition)
            pin = pins.get(name)
            if pin is not None and pin.current_hash == digest:
                continue
            findings = [f.as_dict() for f in scan_tool_definition(definition, other_tools=others)]
            poisoned = any(f["score"] >= FLAG_SCORE for f in findings) and definition_action == "block"
            if pin is None:
                status = PinStatus.FLAGGED if poisoned else PinStatus.APPROVED
                pin = ToolPin(
                    connector=connector,
                    name=name[:500],
                    status=status,
                    approved_hash="" if poisoned else digest,
                    approved_definition=None if poisoned else definition,
                    current_hash=digest,
                    current_definition=definition,
                    findings=findings[:20],
                    approved_at=None if poisoned else timezone.now(),
                )
                pin.save()
                report["new"].append(name)
                if poisoned:
                    report["flagged"].append(name)
                    _audit(connector, name, "ToolGuard flagged the tool's definition", findings)
                continue
            pin.current_hash, pin.current_definition, pin.findings = digest, definition, findings[:20]
            if digest == pin.approved_hash:
                pin.status = PinStatus.APPROVED  # back to what was approved
            elif poisoned:
                pin.status = PinStatus.FLAGGED
                report["flagged"].append(name)
                _audit(connector, name, "ToolGuard flagged the tool's changed definition", findings)
            else:
                pin.status = PinStatus.CHANGED
                report["changed"].append(name)
                _audit(connector, name, "the tool's definition changed since it was approved", findings)
            pin.save()
        if any(report.values()):
            transaction.on_commit(bump_config_version)
    return report


def tool_pin_approve(*, pin: ToolPin, actor: AbstractBaseUser) -> ToolPin:
    with transaction.atomic():
        pin = ToolPin.objects.select_for_update().get(pk=pin.pk)
        pin.status = PinStatus.APPROVED
        pin.approved_hash, pin.approved_definition = pin.current_hash, pin.current_definition
        pin.approved_by, pin.approved_at = actor, timezone.now()
        pin.save()
        audit_record(
            action_type=ActionType.SECURITY_DECISION,
            actor=actor,
            server=pin.connector,
            resource_type="tool",
            resource_name=pin.name,
            details={"decision": "tool definition approved", "hash": pin.approved_hash},
        )
        transaction.on_commit(bump_config_version)
    return pin


def _audit(connector, name: str, reason: str, findings: list[dict]) -> None:
    audit_record(
        action_type=ActionType.SECURITY_VIOLATION,
        server=connector,
        resource_type="tool",
        resource_name=name,
        details={"reason": reason, "findings": findings[:20]},
    )


def tool_pins_observe_by_id(connector_id: str, tools: Mapping[str, dict[str, Any]], definition_action: str) -> dict:
    """``tool_pins_observe`` for callers that hold only the connector's id (the gateway, off its event loop)."""
    from django.db import close_old_connections

    from connectors.models import Connector

    close_old_connections()
    connector = Connector.objects.get(pk=connector_id)
    return tool_pins_observe(connector=connector, tools=tools, definition_action=definition_action)
