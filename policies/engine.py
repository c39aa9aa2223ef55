"""The decision engine: one pure function that every enforcement point calls.

Plain data in, a decision out; no ORM, no I/O. The gateway, the local API and the Runlayer MCP build a
``CallContext`` and ask ``decide(rules, ctx)`` with ``rules`` compiled (and cached) from the database by
``policies.cache``.

Resolution:
1. The connector must exist and be active.
2. Any matching deny wins: global denies first, then the connector's.
3. Otherwise the caller needs an assignment to the connector (directly or through a group) or a
   matching allow policy. Agent accounts have no assignments: they need an allow policy naming them.
4. An agent acting on behalf of a user (an on-behalf-of token) gets the intersection: the call must be
   allowed both for the agent account and for the user.

A policy matches when its principals include the caller (or it is for everyone), its client names and
IP ranges admit the call, its targets cover the item (tool, resource or prompt; a policy without
targets covers the whole connector) and all its argument conditions hold. Connector-level requests
(``initialize``, the lists) name no item: there, a deny applies only when it has no targets, and an
allow with targets still opens the connector (the lists then show only the items it covers).
Argument conditions cannot be judged without arguments: such a deny does not hide an item from a list
(the call itself is checked), and such an allow does not hide it either.

Every pattern is compiled with RE2, so matching is linear in the input whatever the pattern.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import re2

# Which target list of a policy covers the item of a method.
TARGET_KIND = {"tools/call": "tools", "resources/read": "resources", "prompts/get": "prompts"}
OPERATORS = ("equals", "not_equals", "in", "not_in", "begins_with", "contains", "matches", "gt", "gte", "lt", "lte")


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
    rule: str | None = None  # what decided: "assignment", "no-assignment", "policy:<id>"…

    def __bool__(self) -> bool:
        return self.allowed


class PolicyError(ValueError):
    """A policy cannot be compiled; the message says which part and why."""


class Glob:
    """A glob (``*`` any run, ``?`` one character), matched with plain string operations where the pattern
    allows (exact, prefix, suffix, infix) and with an anchored RE2 regex otherwise."""

    __slots__ = ("pattern", "kind", "text", "regex")

    def __init__(self, pattern: str) -> None:
        self.pattern, self.regex, self.text = pattern, None, pattern
        inner = pattern.strip("*")
        if "?" in pattern or "*" in inner:
            self.kind = "regex"
            parts = [".*" if ch == "*" else "." if ch == "?" else re2.escape(ch) for ch in pattern]
            self.regex = re2.compile("^" + "".join(parts) + "$")
        elif pattern == "*" * len(pattern) and pattern:
            self.kind = "any"
        else:
            starts, ends = pattern.startswith("*"), pattern.endswith("*")
            self.kind = {(False, False): "exact", (False, True): "prefix", (True, False): "suffix"}.get(
                (starts, ends), "infix"
            )
            self.text = inner

    def as_regex(self) -> str:
        return "^" + "".join(".*" if ch == "*" else "." if ch == "?" else re2.escape(ch) for ch in self.pattern) + "$"

    def search(self, value: str) -> bool:
        kind = self.kind
        if kind == "exact":
            return value == self.text
        if kind == "prefix":
            return value.startswith(self.text)
        if kind == "suffix":
            return value.endswith(self.text)
        if kind == "infix":
            return self.text in value
        if kind == "any":
            return True
        return self.regex.search(value) is not None


def glob_matcher(pattern: str) -> Glob:
    return Glob(pattern)


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str
    value: Any
    regex: Any = None

    @classmethod
    def compile(cls, raw: Mapping[str, Any]) -> Condition:
        if not isinstance(raw, Mapping):
            raise PolicyError("a condition must be an object with path, op and value")
        path, op, value = raw.get("path"), raw.get("op"), raw.get("value")
        if not isinstance(path, str) or not path.strip():
            raise PolicyError("a condition needs a path into the arguments, e.g. 'path' or 'options.depth'")
        if op not in OPERATORS:
            raise PolicyError(f"unknown operator {op!r}: use one of {', '.join(OPERATORS)}")
        regex = None
        if op == "matches":
            if not isinstance(value, str):
                raise PolicyError("'matches' needs a regular expression as its value")
            try:
                regex = re2.compile(value)
            except re2.error as exc:
                raise PolicyError(f"not a valid (RE2) regular expression: {exc}") from None
        if op in ("in", "not_in") and not isinstance(value, list):
            raise PolicyError(f"{op!r} needs a list as its value")
        if op in ("gt", "gte", "lt", "lte") and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise PolicyError(f"{op!r} needs a number as its value")
        if op == "begins_with" and not isinstance(value, str):
            raise PolicyError("'begins_with' needs a string as its value")
        return cls(path=tuple(path.strip().split(".")), op=op, value=value, regex=regex)

    def holds(self, arguments: Mapping[str, Any]) -> bool:
        found, actual = _lookup(arguments, self.path)
        op, value = self.op, self.value
        if op == "not_equals":
            return not found or actual != value
        if op == "not_in":
            return not found or actual not in value
        if not found:
            return False
        if op == "equals":
            return actual == value
        if op == "in":
            return actual in value
        if op == "begins_with":
            return isinstance(actual, str) and actual.startswith(value)
        if op == "contains":
            if isinstance(actual, str):
                return isinstance(value, str) and value in actual
            return isinstance(actual, list) and value in actual
        if op == "matches":
            return isinstance(actual, str) and self.regex.search(actual) is not None
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            return False
        return {"gt": actual > value, "gte": actual >= value, "lt": actual < value, "lte": actual <= value}[op]


@functools.lru_cache(maxsize=4096)
def _ip(text: str | None) -> tuple[int, int] | None:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    return address.version, int(address)


def _lookup(data: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(data, Mapping) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return False, None
    return True, data


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    id: str
    name: str
    effect: str  # "allow" | "deny"
    connector_id: str | None
    everyone: bool = False
    user_ids: frozenset[int] = frozenset()
    group_ids: frozenset[int] = frozenset()
    agent_ids: frozenset[str] = frozenset()
    targets: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # kind → glob matchers
    conditions: tuple[Condition, ...] = ()
    client_names: tuple[Any, ...] = ()
    ip_ranges: tuple[Any, ...] = ()
    description: str = ""

    @classmethod
    def compile(
        cls,
        *,
        id: str,
        name: str,
        effect: str,
        connector_id: str | None,
        everyone: bool = False,
        user_ids: Sequence[int] = (),
        group_ids: Sequence[int] = (),
        agent_ids: Sequence[str] = (),
        tools: Sequence[str] = (),
        resources: Sequence[str] = (),
        prompts: Sequence[str] = (),
        conditions: Sequence[Mapping[str, Any]] = (),
        client_names: Sequence[str] = (),
        ip_ranges: Sequence[str] = (),
        description: str = "",
    ) -> CompiledPolicy:
        if effect not in ("allow", "deny"):
            raise PolicyError("effect must be allow or deny")
        if connector_id is None and effect != "deny":
            raise PolicyError("a global policy (no connector) can only deny")
        targets = {}
        for kind, patterns in (("tools", tools), ("resources", resources), ("prompts", prompts)):
            if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) and p for p in patterns):
                raise PolicyError(f"{kind} must be a list of names or globs")
            if patterns:
                targets[kind] = tuple(glob_matcher(p) for p in patterns)
        if not isinstance(conditions, (list, tuple)):
            raise PolicyError("conditions must be a list")
        if not isinstance(client_names, (list, tuple)) or not all(isinstance(c, str) and c for c in client_names):
            raise PolicyError("client_names must be a list of names or globs")
        networks = []
        for cidr in ip_ranges:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except (TypeError, ValueError):
                raise PolicyError(f"{cidr!r} is not an IP address or CIDR range") from None
            networks.append((network.version, int(network.network_address), int(network.broadcast_address)))
        return cls(
            id=id,
            name=name,
            effect=effect,
            connector_id=connector_id,
            everyone=everyone,
            user_ids=frozenset(user_ids),
            group_ids=frozenset(group_ids),
            agent_ids=frozenset(str(a) for a in agent_ids),
            targets=targets,
            conditions=tuple(Condition.compile(c) for c in conditions),
            client_names=tuple(glob_matcher(c.lower()) for c in client_names),
            ip_ranges=tuple(networks),
            description=description,
        )

    # -- matching ------------------------------------------------------------------------------
    def covers_principal(self, principal: Principal) -> bool:
        if self.everyone:
            return True
        if principal.user_id is None:  # an agent account acting as itself
            return principal.agent_id is not None and principal.agent_id in self.agent_ids
        if principal.user_id in self.user_ids:
            return True
        return not self.group_ids.isdisjoint(principal.group_ids)

    def admits_client(self, ctx: CallContext) -> bool:
        if self.client_names:
            client = ctx.client_name.lower()
            if not any(m.search(client) for m in self.client_names):
                return False
        if self.ip_ranges:
            address = _ip(ctx.ip)
            if address is None:
                return False
            version, value = address
            if not any(v == version and low <= value <= high for v, low, high in self.ip_ranges):
                return False
        return True

    def covers_item(self, ctx: CallContext) -> bool | None:
        """True/False for an item-level call; None for a connector-level request (no item)."""
        kind = TARGET_KIND.get(ctx.method)
        if kind is None or ctx.name is None:
            return None
        if not self.targets:
            return True
        matchers = self.targets.get(kind)
        return bool(matchers) and any(m.search(ctx.name) for m in matchers)

    def matches(self, ctx: CallContext) -> bool:
        if not self.covers_principal(ctx.principal):
            return False
        item = self.covers_item(ctx)
        if item is None:  # connector-level request
            if self.effect == "deny" and (self.targets or self.conditions):
                return False
            return self.admits_client(ctx)
        if not item or not self.admits_client(ctx):
            return False
        if not self.conditions:
            return True
        if ctx.arguments is None:  # listing: conditions cannot be judged
            return self.effect == "allow"
        return all(c.holds(ctx.arguments) for c in self.conditions)

    def reason(self) -> str:
        verb = "denied" if self.effect == "deny" else "allowed"
        text = f"{verb} by policy {self.name!r}"
        return f"{text}: {self.description}" if self.description else text


@dataclass(frozen=True, slots=True)
class ConnectorRules:
    connector_id: str
    name: str
    active: bool
    user_ids: frozenset[int] = frozenset()
    group_ids: frozenset[int] = frozenset()
    policies: tuple[CompiledPolicy, ...] = ()
    # ToolGuard pins: tool name → (hash of the definition last seen, status); non-approved tools are blocked
    pins: Mapping[str, tuple[str, str]] = field(default_factory=dict)


class ClientIndex:
    """Policies narrowed by client name in one RE2 pass: those naming clients are only checked when one of
    their globs matches the caller's client; the others are always checked. Keeps their order."""

    def __init__(self, policies: Sequence[CompiledPolicy]) -> None:
        self.policies = tuple(policies)
        self.always = tuple(i for i, p in enumerate(self.policies) if not p.client_names)
        self._owners: list[int] = []
        self._set = None
        keyed = [(i, p) for i, p in enumerate(self.policies) if p.client_names]
        if keyed:
            self._set = re2.Set.SearchSet(re2.Options())
            for i, policy in keyed:
                for glob in policy.client_names:
                    self._set.Add(glob.as_regex())
                    self._owners.append(i)
            self._set.Compile()

    def candidates(self, client_name: str) -> list[CompiledPolicy]:
        if self._set is None:
            return list(self.policies)
        hits = self._set.Match(client_name.lower()) or ()
        indexes = sorted({*self.always, *(self._owners[h] for h in hits)})
        return [self.policies[i] for i in indexes]


@dataclass(frozen=True)
class RuleSet:
    """Everything ``decide`` needs, compiled once per configuration version."""

    version: int
    connectors: Mapping[str, ConnectorRules] = field(default_factory=dict)
    global_denies: tuple[CompiledPolicy, ...] = ()
    global_index: ClientIndex | None = field(default=None, compare=False)
    # ToolGuard actions per scanner: defaults, and overrides per connector id
    guard_default: Mapping[str, str] = field(default_factory=dict)
    guard_by_connector: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def guard_actions(self, connector_id: str) -> Mapping[str, str]:
        return self.guard_by_connector.get(connector_id) or self.guard_default

    def __post_init__(self) -> None:
        if self.global_index is None:
            object.__setattr__(self, "global_index", ClientIndex(self.global_denies))


def _assigned(rules: ConnectorRules, principal: Principal) -> bool:
    if principal.user_id is not None and principal.user_id in rules.user_ids:
        return True
    return not rules.group_ids.isdisjoint(principal.group_ids)


def decide(rules: RuleSet, ctx: CallContext) -> Decision:
    principal = ctx.principal
    if principal.agent_id is not None and principal.user_id is not None:
        # On behalf of a user: the call must be allowed for the agent account and for the user.
        as_agent = Principal(user_id=None, username=f"agent:{principal.agent_id}", agent_id=principal.agent_id)
        as_user = Principal(
            user_id=principal.user_id,
            username=principal.username,
            email=principal.email,
            group_ids=principal.group_ids,
            is_admin=principal.is_admin,
        )
        for who, alone in (("the agent account", as_agent), ("the user", as_user)):
            decision = _decide(rules, replace(ctx, principal=alone))
            if not decision.allowed:
                return Decision(False, f"{decision.reason} (for {who})", decision.rule)
        return Decision(True, "allowed for both the agent account and the user", "on-behalf-of")
    return _decide(rules, ctx)


def _decide(rules: RuleSet, ctx: CallContext) -> Decision:
    connector = rules.connectors.get(ctx.connector_id)
    if connector is None:
        return Decision(False, "no such connector", "unknown-connector")
    if not connector.active:
        return Decision(False, f"the connector {connector.name!r} is not active", "connector-inactive")
    if ctx.method == "tools/call" and ctx.name is not None:
        pin = connector.pins.get(ctx.name)
        if pin is not None and pin[1] != "approved":
            reason = (
                "ToolGuard blocked this tool: its definition changed since an admin approved it"
                if pin[1] == "changed"
                else "ToolGuard blocked this tool: its definition looks poisoned"
            )
            return Decision(False, f"{reason}; an admin must review and approve it", f"toolguard:{pin[1]}")
    for policy in rules.global_index.candidates(ctx.client_name):
        if policy.matches(ctx):
            return Decision(False, policy.reason(), f"policy:{policy.id}")
    for policy in connector.policies:
        if policy.effect == "deny" and policy.matches(ctx):
            return Decision(False, policy.reason(), f"policy:{policy.id}")
    if _assigned(connector, ctx.principal):
        return Decision(True, "assigned to the connector", "assignment")
    for policy in connector.policies:
        if policy.effect == "allow" and policy.matches(ctx):
            return Decision(True, policy.reason(), f"policy:{policy.id}")
    return Decision(
        False, f"you do not have access to the connector {connector.name!r}; ask an admin for it", "no-assignment"
    )


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
