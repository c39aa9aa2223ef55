"""The decision engine: one pure function that every enforcement point calls.

Plain data in, a decision out; no ORM, no I/O. The gateway, the local API and the Runlayer MCP build a
``CallContext`` and ask ``decide(rules, ctx)`` with ``rules`` compiled (and cached) from the database
by ``policies.cache``. Today's rules are connector assignments (a user may use a connector assigned to
them directly or through a group); policy rules plug in here without touching the callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling."""

    user_id: int | None
    username: str = ""
    email: str = ""
    group_ids: frozenset[int] = frozenset()
    is_admin: bool = False
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """What is being asked: an MCP method on a connector, with the item's name and arguments where it has them."""

    principal: Principal
    connector_id: str
    method: str
    name: str | None = None
    arguments: Mapping[str, Any] | None = None
    client_name: str = ""
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: str | None = None  # what decided: "assignment", "no-assignment", a policy's id…

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class ConnectorRules:
    connector_id: str
    name: str
    active: bool
    user_ids: frozenset[int] = frozenset()
    group_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RuleSet:
    """Everything ``decide`` needs, compiled once per configuration version."""

    version: int
    connectors: Mapping[str, ConnectorRules] = field(default_factory=dict)


def _assigned(rules: ConnectorRules, principal: Principal) -> bool:
    if principal.user_id is not None and principal.user_id in rules.user_ids:
        return True
    return not rules.group_ids.isdisjoint(principal.group_ids)


def decide(rules: RuleSet, ctx: CallContext) -> Decision:
    connector = rules.connectors.get(ctx.connector_id)
    if connector is None:
        return Decision(False, "no such connector", "unknown-connector")
    if not connector.active:
        return Decision(False, f"the connector {connector.name!r} is not active", "connector-inactive")
    if not _assigned(connector, ctx.principal):
        return Decision(
            False, f"you do not have access to the connector {connector.name!r}; ask an admin for it", "no-assignment"
        )
    return Decision(True, "assigned to the connector", "assignment")


def may_see(rules: RuleSet, ctx: CallContext, names: list[str]) -> list[str]:
    """The names of the items (tools, prompts, resources) that ``ctx.principal`` may call, in order."""
    allowed = []
    for name in names:
        item_ctx = CallContext(
            principal=ctx.principal,
            connector_id=ctx.connector_id,
            method=ctx.method,
            name=name,
            client_name=ctx.client_name,
            ip=ctx.ip,
        )
        if decide(rules, item_ctx).allowed:
            allowed.append(name)
    return allowed
