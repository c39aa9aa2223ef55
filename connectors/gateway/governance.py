"""Governance steps shared by every enforcement point that sees MCP traffic (the hosted gateway and the
local API behind ``runlayer run``): list filtering by policy and the Tool List Guard on tool lists.

The decision itself is ``policies.engine.decide``; these helpers apply it to whole lists so both
enforcement points show a caller exactly the same items.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from connectors.capabilities import definition_hash
from policies.engine import CallContext, Principal, RuleSet, may_see
from policies.toolguard.pins import tool_pins_observe_by_id

from .protocol import LIST_FILTERS


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
