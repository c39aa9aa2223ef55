"""Governance steps shared by every enforcement point that sees MCP traffic (the hosted gateway and the
local API behind ``runlayer run``): list filtering by policy and the Tool List Guard on tool lists.

The decision itself is ``policies.engine.decide``; these helpers apply it to whole lists so both
enforcement points show a caller exactly the same items.
"""

from __future__ import annotations

import time
from typing import Any

from asgiref.sync import sync_to_async

from audit.models import ActionType
from connectors.capabilities import definition_hash
from policies.engine import CallContext, Principal, RuleSet, may_see
from policies.toolguard.callguard import GuardResult, guard
from policies.toolguard.pins import tool_pins_observe_by_id

from .protocol import ARGUMENT_SCANNERS, LIST_FILTERS, Exchange
from .recording import audit


def visible_items(
    rules: RuleSet,
    *,
    principal: Principal,
    connector_id: str,
    list_method: str,
    items: list[Any],
    client_name: str = "",
    ip: str | None = None,
) -> list[dict[str, Any]]:
    """The items of a list result (tools, resources, prompts) that ``principal`` may use, in order."""
    _, item_method, name_key = LIST_FILTERS[list_method]
    ctx = CallContext(
        principal=principal, connector_id=connector_id, method=item_method, client_name=client_name, ip=ip
    )
    names = [i.get(name_key) for i in items if isinstance(i, dict) and isinstance(i.get(name_key), str)]
    allowed = set(may_see(rules, ctx, names))
    return [i for i in items if isinstance(i, dict) and i.get(name_key) in allowed]


async def guard_tool_list(
    rules: RuleSet, *, connector_id: str, tools: list[dict[str, Any]], definition_action: str
) -> list[dict[str, Any]]:
    """The tools whose definition is the approved one (rug pulls and poisoned definitions are left out).

    Definitions seen for the first time, or changed, are handed to the pins (a database write, only when
    something changed) and judged there.
    """
    connector_rules = rules.connectors.get(connector_id)
    pins = connector_rules.pins if connector_rules is not None else {}
    blocked = {name for name, (_, status) in pins.items() if status != "approved"}
    unseen = {}
    for tool in tools:
        name = tool.get("name")
        pin = pins.get(name)
        if pin is None or pin[0] != definition_hash(tool):
            unseen[name] = tool
    if unseen:
        report = await sync_to_async(tool_pins_observe_by_id, thread_sensitive=False)(
            connector_id, unseen, definition_action
        )
        newly_blocked = set(report["changed"]) | set(report["flagged"])
        blocked = (blocked - set(unseen)) | newly_blocked
    if not blocked:
        return tools
    return [t for t in tools if t.get("name") not in blocked]


def scan_arguments(ex: Exchange, arguments: dict[str, Any], actions) -> tuple[str | None, GuardResult]:
    """The Tool Call Guard on a call's arguments: (the answer when it blocks, else None; the scan, whose value
    is the arguments to forward, masked where masking applies). A block is audited here."""
    started = time.perf_counter()
    scanned = guard(arguments, actions, scanners=ARGUMENT_SCANNERS)
    ex.guard_ms += (time.perf_counter() - started) * 1000
    if scanned.blocked:
        details = {"reason": f"ToolGuard: {scanned.reason} in the arguments", "findings": scanned.findings[:20]}
        audit(ex, ActionType.SECURITY_VIOLATION, details=details)
        return f"Blocked by Runlayer ToolGuard: {scanned.reason} in the arguments", scanned
    ex.findings.extend(scanned.findings[:20])
    return None, scanned


def scan_result(ex: Exchange, result: Any, actions, name: str | None) -> tuple[str | None, GuardResult]:
    """The Tool Call Guard on a result (tool, resource or prompt): as ``scan_arguments``, for what comes back."""
    started = time.perf_counter()
    scanned = guard(result, actions)
    ex.guard_ms += (time.perf_counter() - started) * 1000
    ex.findings.extend(scanned.findings[:20])
    if scanned.blocked:
        reason = f"ToolGuard: {scanned.reason} in the result"
        audit(ex, ActionType.SECURITY_VIOLATION, details={"reason": reason, "findings": ex.findings})
        return f"Blocked by Runlayer ToolGuard: {scanned.reason} in the result of {name!r}", scanned
    return None, scanned
