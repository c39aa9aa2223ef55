"""The compiled rules of ``policies.engine``, cached per process and rebuilt when the config version moves."""

from __future__ import annotations

import logging
import threading

from asgiref.sync import sync_to_async

from runlayer.cache_version import aread_config_version, read_config_version

from .engine import CompiledPolicy, ConnectorRules, PolicyError, RuleSet

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_current: RuleSet | None = None


def compile_policy(policy, user_ids=(), group_ids=(), agent_ids=()) -> CompiledPolicy:
    return CompiledPolicy.compile(
        id=str(policy.id),
        name=policy.name,
        description=policy.description,
        effect=policy.effect,
        connector_id=str(policy.connector_id) if policy.connector_id else None,
        everyone=policy.everyone,
        user_ids=user_ids,
        group_ids=group_ids,
        agent_ids=agent_ids,
        tools=policy.tools or [],
        resources=policy.resources or [],
        prompts=policy.prompts or [],
        conditions=policy.conditions or [],
        client_names=policy.client_names or [],
        ip_ranges=policy.ip_ranges or [],
    )


def _compiled_policies() -> list[CompiledPolicy]:
    from .models import Policy

    users: dict[str, set[int]] = {}
    groups: dict[str, set[int]] = {}
    for policy_id, user_id in Policy.users.through.objects.values_list("policy_id", "user_id"):
        users.setdefault(str(policy_id), set()).add(user_id)
    for policy_id, group_id in Policy.groups.through.objects.values_list("policy_id", "group_id"):
        groups.setdefault(str(policy_id), set()).add(group_id)
    agents: dict[str, set[str]] = {}
    for policy_id, agent_id in Policy.agents.through.objects.values_list("policy_id", "agentaccount_id"):
        agents.setdefault(str(policy_id), set()).add(str(agent_id))
    compiled = []
    for policy in Policy.objects.filter(enabled=True):
        key = str(policy.id)
        try:
            compiled.append(compile_policy(policy, users.get(key, ()), groups.get(key, ()), agents.get(key, ())))
        except PolicyError:
            logger.exception("policy %s cannot be compiled and is skipped", policy.id)
    return compiled


def compile_rules(version: int) -> RuleSet:
    from connectors.models import Connector, ConnectorStatus

    connectors: dict[str, ConnectorRules] = {}
    users: dict[str, set[int]] = {}
    groups: dict[str, set[int]] = {}
    for connector_id, user_id in Connector.users.through.objects.values_list("connector_id", "user_id"):
        users.setdefault(str(connector_id), set()).add(user_id)
    for connector_id, group_id in Connector.groups.through.objects.values_list("connector_id", "group_id"):
        groups.setdefault(str(connector_id), set()).add(group_id)
    by_connector: dict[str, list[CompiledPolicy]] = {}
    global_denies = []
    for policy in _compiled_policies():
        if policy.connector_id is None:
            global_denies.append(policy)
        else:
            by_connector.setdefault(policy.connector_id, []).append(policy)
    from .models import ToolPin

    pins: dict[str, dict[str, tuple[str, str]]] = {}
    for connector_id, name, current_hash, pin_status in ToolPin.objects.values_list(
        "connector_id", "name", "current_hash", "status"
    ):
        pins.setdefault(str(connector_id), {})[name] = (current_hash, pin_status)
    for connector_id, name, status in Connector.objects.values_list("id", "name", "status"):
        key = str(connector_id)
        connectors[key] = ConnectorRules(
            connector_id=key,
            name=name,
            active=status == ConnectorStatus.ACTIVE,
            user_ids=frozenset(users.get(key, ())),
            group_ids=frozenset(groups.get(key, ())),
            policies=tuple(by_connector.get(key, ())),
            pins=pins.get(key, {}),
        )
    guard_default, guard_by_connector = _guard_settings()
    return RuleSet(
        version=version,
        connectors=connectors,
        global_denies=tuple(global_denies),
        guard_default=guard_default,
        guard_by_connector=guard_by_connector,
    )


def _guard_settings() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    from .models import GuardSettings
    from .toolguard.callguard import DEFAULT_ACTIONS

    default = dict(DEFAULT_ACTIONS)
    by_connector: dict[str, dict[str, str]] = {}
    for row in GuardSettings.objects.all():
        actions = {
            "definition": row.definition_action,
            "secrets": row.secrets_action,
            "pii": row.pii_action,
            "injection": row.injection_action,
            "hidden": row.hidden_action,
        }
        if row.connector_id is None:
            default = actions
        else:
            by_connector[str(row.connector_id)] = actions
    return default, by_connector


def current_rules() -> RuleSet:
    global _current
    version = read_config_version()
    rules = _current
    if rules is None or rules.version != version:
        with _lock:
            if _current is None or _current.version != version:
                _current = compile_rules(version)
            rules = _current
    return rules


async def acurrent_rules() -> RuleSet:
    version = await aread_config_version()
    rules = _current
    if rules is not None and rules.version == version:
        return rules
    return await sync_to_async(current_rules, thread_sensitive=False)()
