"""The compiled rules of ``policies.engine``, cached per process and rebuilt when the config version moves."""

from __future__ import annotations

import threading

from asgiref.sync import sync_to_async

from runlayer.cache_version import aread_config_version, read_config_version

from .engine import ConnectorRules, RuleSet

_lock = threading.Lock()
_current: RuleSet | None = None


def compile_rules(version: int) -> RuleSet:
    from connectors.models import Connector, ConnectorStatus

    connectors: dict[str, ConnectorRules] = {}
    users: dict[str, set[int]] = {}
    groups: dict[str, set[int]] = {}
    for connector_id, user_id in Connector.users.through.objects.values_list("connector_id", "user_id"):
        users.setdefault(str(connector_id), set()).add(user_id)
    for connector_id, group_id in Connector.groups.through.objects.values_list("connector_id", "group_id"):
        groups.setdefault(str(connector_id), set()).add(group_id)
    for connector_id, name, status in Connector.objects.values_list("id", "name", "status"):
        key = str(connector_id)
        connectors[key] = ConnectorRules(
            connector_id=key,
            name=name,
            active=status == ConnectorStatus.ACTIVE,
            user_ids=frozenset(users.get(key, ())),
            group_ids=frozenset(groups.get(key, ())),
        )
    return RuleSet(version=version, connectors=connectors)


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
