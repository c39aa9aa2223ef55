"""Writes to policies. Each one is validated by compiling it, audited, and invalidates the decision caches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import AgentAccount
from audit.models import ActionType
from audit.services import audit_record
from connectors.services import resolve_principals
from runlayer.cache_version import bump_config_version

from .cache import compile_policy
from .engine import PolicyError
from .models import Effect, Policy

FIELDS = (
    "name",
    "description",
    "enabled",
    "effect",
    "connector",
    "everyone",
    "tools",
    "resources",
    "prompts",
    "conditions",
    "client_names",
    "ip_ranges",
)


def policy_validate(policy: Policy) -> None:
    errors: dict[str, list[str]] = {}
    if not (policy.name or "").strip():
        errors["name"] = ["a name is required"]
    if policy.effect not in Effect.values:
        errors["effect"] = ["must be allow or deny"]
    elif policy.connector_id is None and policy.effect != Effect.DENY:
        errors["effect"] = ["a global policy (no connector) can only deny"]
    if errors:
        raise ValidationError(errors)
    try:
        compile_policy(policy)
    except PolicyError as exc:
        raise ValidationError({"policy": [str(exc)]}) from None


def _snapshot(policy: Policy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "effect": policy.effect,
        "enabled": policy.enabled,
        "connector_id": str(policy.connector_id) if policy.connector_id else None,
        "everyone": policy.everyone,
        "tools": policy.tools,
        "resources": policy.resources,
        "prompts": policy.prompts,
        "conditions": policy.conditions,
        "client_names": policy.client_names,
        "ip_ranges": policy.ip_ranges,
        "users": sorted(u.get_username() for u in policy.users.all()) if policy.pk else [],
        "groups": sorted(g.name for g in policy.groups.all()) if policy.pk else [],
        "agents": sorted(a.name for a in policy.agents.all()) if policy.pk else [],
    }


def _audit(action: str, policy: Policy, actor: AbstractBaseUser | None, **extra: Any) -> None:
    audit_record(
        action_type=action,
        actor=actor,
        server=policy.connector,
        resource_type="policy",
        resource_name=policy.name,
        details={"policy_id": str(policy.id), **extra},
    )


def policy_create(
    *,
    actor: AbstractBaseUser | None,
    users: Iterable[Any] = (),
    groups: Iterable[Any] = (),
    agents: Iterable[Any] = (),
    **fields: Any,
) -> Policy:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    policy = Policy(**fields)
    policy_validate(policy)
    user_objs = resolve_principals(get_user_model(), list(users), lookup="username", what="users")
    group_objs = resolve_principals(Group, list(groups), lookup="name", what="groups")
    agent_objs = resolve_principals(AgentAccount, list(agents), lookup="name", what="agents")
    with transaction.atomic():
        policy.save()
        policy.users.set(user_objs)
        policy.groups.set(group_objs)
        policy.agents.set(agent_objs)
        _audit(ActionType.POLICY_CREATED, policy, actor, snapshot=_snapshot(policy))
        transaction.on_commit(bump_config_version)
    return policy


def policy_update(
    *,
    policy: Policy,
    actor: AbstractBaseUser | None,
    users: Iterable[Any] | None = None,
    groups: Iterable[Any] | None = None,
    agents: Iterable[Any] | None = None,
    **fields: Any,
) -> Policy:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    user_objs = (
        None if users is None else resolve_principals(get_user_model(), list(users), lookup="username", what="users")
    )
    group_objs = None if groups is None else resolve_principals(Group, list(groups), lookup="name", what="groups")
    agent_objs = (
        None if agents is None else resolve_principals(AgentAccount, list(agents), lookup="name", what="agents")
    )
    with transaction.atomic():
        policy = Policy.objects.select_for_update().get(pk=policy.pk)
        before = _snapshot(policy)
        for key, value in fields.items():
            setattr(policy, key, value)
        policy_validate(policy)
        policy.save()
        if user_objs is not None:
            policy.users.set(user_objs)
        if group_objs is not None:
            policy.groups.set(group_objs)
        if agent_objs is not None:
            policy.agents.set(agent_objs)
        after = _snapshot(policy)
        if after != before:
            changed = sorted(k for k in after if after[k] != before[k])
            _audit(ActionType.POLICY_UPDATED, policy, actor, changed_fields=changed, snapshot=after)
            transaction.on_commit(bump_config_version)
    return policy


def policy_delete(*, policy: Policy, actor: AbstractBaseUser | None) -> None:
    with transaction.atomic():
        _audit(ActionType.POLICY_DELETED, policy, actor, snapshot=_snapshot(policy))
        policy.delete()
        transaction.on_commit(bump_config_version)
