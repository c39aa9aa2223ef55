"""Writes to connectors, the catalog and capability snapshots. Every change that matters is audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from audit.models import ActionType
from audit.services import audit_record

from .capabilities import CapabilityFetchError, CapabilitySet, definition_hash, fetch_capabilities
from .models import CapabilityKind, CatalogEntry, Connector, ConnectorCapability, ConnectorStatus, DeploymentMode
from .validation import validate_connector_config

User = get_user_model()

EDITABLE_FIELDS = (
    "name",
    "description",
    "icon_url",
    "status",
    "deployment_mode",
    "transport",
    "url",
    "args",
    "env",
    "headers",
    "inherit_env",
    "is_sensitive",
)


def _unique_slug(name: str, *, exclude_id: Any = None) -> str:
    base = slugify(name)[:80] or "connector"
    slug = base
    n = 2
    qs = Connector.objects.all()
    if exclude_id is not None:
        qs = qs.exclude(id=exclude_id)
    while qs.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


def _config_of(connector: Connector) -> dict[str, Any]:
    return {field: getattr(connector, field) for field in EDITABLE_FIELDS}


def connector_create(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    deployment_mode: str,
    transport: str,
    url: str = "",
    description: str = "",
    icon_url: str = "",
    status: str = ConnectorStatus.DRAFT,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    inherit_env: list[str] | None = None,
    is_sensitive: bool = False,
    catalog_entry: CatalogEntry | None = None,
) -> Connector:
    config = {
        "name": name,
        "description": description or "",
        "icon_url": icon_url or "",
        "status": status,
        "deployment_mode": deployment_mode,
        "transport": transport,
        "url": (url or "").strip(),
        "args": list(args or []),
        "env": dict(env or {}),
        "headers": dict(headers or {}),
        "inherit_env": list(inherit_env or []),
        "is_sensitive": bool(is_sensitive),
    }
    validate_connector_config(config)
    with transaction.atomic():
        connector = Connector.objects.create(
            slug=_unique_slug(name),
            catalog_entry=catalog_entry,
            owner=actor if actor is not None and actor.is_authenticated else None,
            **config,
        )
        audit_record(
            action_type=ActionType.SERVER_CREATED,
            actor=actor,
            server=connector,
            resource_type="server",
            resource_name=connector.name,
            details={"deployment_mode": connector.deployment_mode, "transport": connector.transport},
        )
    _after_change(connector)
    return connector


def connector_update(*, connector: Connector, actor: AbstractBaseUser | None, **changes: Any) -> Connector:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    if "url" in changes and isinstance(changes["url"], str):
        changes["url"] = changes["url"].strip()
    with transaction.atomic():
        # Compare with the row as it is now, not with what the caller loaded earlier.
        connector = Connector.objects.select_for_update().get(pk=connector.pk)
        before = _config_of(connector)
        after = {**before, **changes}
        validate_connector_config(after)
        changed = sorted(field for field in EDITABLE_FIELDS if before[field] != after[field])
        if not changed:
            return connector
        for field in changed:
            setattr(connector, field, after[field])
        if "name" in changed:
            connector.slug = _unique_slug(connector.name, exclude_id=connector.id)
        if any(field in Connector.RUNTIME_FIELDS for field in changed):
            connector.version += 1
        connector.save()
        # Header values are secrets: the event names the changed fields, never their values.
        audit_record(
            action_type=ActionType.SERVER_UPDATED,
            actor=actor,
            server=connector,
            resource_type="server",
            resource_name=connector.name,
            details={"changed_fields": changed, "version": connector.version},
        )
        if "status" in changed:
            _audit_status(connector, actor)
    _after_change(connector)
    return connector


def _audit_status(connector: Connector, actor: AbstractBaseUser | None) -> None:
    action = {
        ConnectorStatus.ACTIVE: ActionType.SERVER_ENABLED,
        ConnectorStatus.DISABLED: ActionType.SERVER_DISABLED,
    }.get(connector.status)
    if action is not None:
        audit_record(
            action_type=action, actor=actor, server=connector, resource_type="server", resource_name=connector.name
        )


def connector_set_status(*, connector: Connector, actor: AbstractBaseUser | None, status: str) -> Connector:
    return connector_update(connector=connector, actor=actor, status=status)


def connector_delete(*, connector: Connector, actor: AbstractBaseUser | None) -> None:
    with transaction.atomic():
        audit_record(
            action_type=ActionType.SERVER_DELETED,
            actor=actor,
            server=connector,
            resource_type="server",
            resource_name=connector.name,
        )
        connector.delete()
    _after_change(connector)


def resolve_principals(model: Any, refs: Iterable[Any], *, lookup: str, what: str) -> list[Any]:
    """Users or groups by id or by name; unknown references are a validation error naming them."""
    from django.core.exceptions import ValidationError

    found: list[Any] = []
    missing: list[str] = []
    for ref in refs:
        obj = None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            obj = model.objects.filter(pk=int(ref)).first()
        if obj is None and isinstance(ref, str):
            obj = model.objects.filter(**{lookup: ref}).first()
        if obj is None and isinstance(ref, str) and model._meta.pk.get_internal_type() == "UUIDField":
            try:
                obj = model.objects.filter(pk=uuid.UUID(ref)).first()
            except ValueError:
                obj = None
        if obj is None:
            missing.append(str(ref))
        else:
            found.append(obj)
    if missing:
        raise ValidationError({what: [f"unknown {what[:-1]}: {', '.join(missing)}"]})
    return found


def connector_set_access(
    *,
    connector: Connector,
    actor: AbstractBaseUser | None,
    users: Iterable[Any] | None = None,
    groups: Iterable[Any] | None = None,
) -> Connector:
    """Set who may use a connector. ``None`` leaves that side unchanged; users and groups by id or name."""
    new_users = None if users is None else resolve_principals(User, users, lookup="username", what="users")
    new_groups = None if groups is None else resolve_principals(Group, groups, lookup="name", what="groups")

    def snapshot() -> tuple[list[str], list[str]]:
        return (
            sorted(u.get_username() for u in connector.users.all()),
            sorted(g.name for g in connector.groups.all()),
        )

    with transaction.atomic():
        before = snapshot()
        if new_users is not None:
            connector.users.set(new_users)
        if new_groups is not None:
            connector.groups.set(new_groups)
        after = snapshot()
        if after == before:
            return connector
        audit_record(
            action_type=ActionType.SERVER_ACCESS_CHANGED,
            actor=actor,
            server=connector,
            resource_type="server",
            resource_name=connector.name,
            details={"users": after[0], "groups": after[1]},
        )
    _after_change(connector)
    return connector


def catalog_entry_instantiate(
    *, entry: CatalogEntry, actor: AbstractBaseUser | None, name: str | None = None, **overrides: Any
) -> Connector:
    """A new draft connector configured from a catalog entry; the admin activates it when ready."""
    config: dict[str, Any] = {
        "name": name or entry.name,
        "description": entry.description,
        "icon_url": entry.icon_url,
        "deployment_mode": entry.deployment_mode,
        "transport": entry.transport,
        "url": entry.url,
        "args": list(entry.args),
        "env": dict(entry.env),
        "inherit_env": list(entry.inherit_env),
    }
    config.update(overrides)
    return connector_create(actor=actor, catalog_entry=entry, **config)


@dataclass
class CapabilityChanges:
    added: list[str]
    changed: list[str]
    removed: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


def connector_store_capabilities(
    *, connector: Connector, capabilities: CapabilitySet, connector_version: int | None = None
) -> CapabilityChanges:
    """Replace a connector's stored capabilities with what its server reported, hashing each item."""
    now = timezone.now()
    incoming: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, items in (
        (CapabilityKind.TOOL, capabilities.tools),
        (CapabilityKind.RESOURCE, capabilities.resources),
        (CapabilityKind.RESOURCE_TEMPLATE, capabilities.resource_templates),
        (CapabilityKind.PROMPT, capabilities.prompts),
    ):
        for name, definition in items.items():
            incoming[(str(kind), str(name)[:500])] = definition

    with transaction.atomic():
        existing = {(c.kind, c.name): c for c in ConnectorCapability.objects.filter(connector=connector)}
        added, changed, to_create, to_update = [], [], [], []
        for key, definition in incoming.items():
            digest = definition_hash(definition)
            current = existing.get(key)
            if current is None:
                added.append(f"{key[0]}:{key[1]}")
                to_create.append(
                    ConnectorCapability(
                        connector=connector,
                        kind=key[0],
                        name=key[1],
                        definition=definition,
                        definition_hash=digest,
                        synced_at=now,
                    )
                )
            else:
                if current.definition_hash != digest:
                    changed.append(f"{key[0]}:{key[1]}")
                current.definition, current.definition_hash, current.synced_at = definition, digest, now
                to_update.append(current)
        removed_keys = [key for key in existing if key not in incoming]
        ConnectorCapability.objects.bulk_create(to_create)
        ConnectorCapability.objects.bulk_update(to_update, ["definition", "definition_hash", "synced_at"])
        if removed_keys:
            ConnectorCapability.objects.filter(id__in=[existing[key].id for key in removed_keys]).delete()
        Connector.objects.filter(pk=connector.pk).update(
            capabilities_synced_at=now,
            capabilities_version=connector_version if connector_version is not None else connector.version,
            last_sync_error="",
        )
    connector.refresh_from_db()
    _after_change(connector)
    return CapabilityChanges(
        added=sorted(added), changed=sorted(changed), removed=sorted(f"{k}:{n}" for k, n in removed_keys)
    )


def connector_sync_capabilities(*, connector: Connector, actor: AbstractBaseUser | None = None) -> CapabilityChanges:
    """Fetch a hosted connector's capabilities from its upstream and store them.

    Raises ``CapabilityFetchError`` (with a message safe to show) when the upstream cannot be read;
    the error is also kept on the connector so the admin shows why the last sync failed.
    """
    if connector.deployment_mode != DeploymentMode.HOSTED:
        raise CapabilityFetchError("local connectors are synced by the CLI on the user's machine")
    version = connector.version
    try:
        capabilities = fetch_capabilities(
            url=connector.url,
            transport=connector.transport,
            headers=connector.headers or {},
            timeout=float(settings.RUNLAYER_UPSTREAM_TIMEOUT_SECONDS),
        )
    except CapabilityFetchError as exc:
        Connector.objects.filter(pk=connector.pk).update(last_sync_error=str(exc)[:1000])
        connector.last_sync_error = str(exc)[:1000]
        raise
    changes = connector_store_capabilities(connector=connector, capabilities=capabilities, connector_version=version)
    connector_observe_tools(connector=connector, tools=capabilities.tools)
    audit_record(
        action_type=ActionType.SERVER_CAPABILITIES_SYNCED,
        actor=actor,
        server=connector,
        resource_type="server",
        resource_name=connector.name,
        details=changes.as_dict(),
    )
    return changes


def connector_observe_tools(*, connector: Connector, tools: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Hand freshly reported tool definitions to ToolGuard's pins (rug pulls, poisoning)."""
    from policies.cache import current_rules
    from policies.toolguard.pins import tool_pins_observe

    action = current_rules().guard_actions(str(connector.id)).get("definition", "block")
    return tool_pins_observe(connector=connector, tools=tools, definition_action=action)


def _after_change(connector: Connector) -> None:
    """Hook for caches that derive from connectors (the gateway's, in its own issue)."""
    from runlayer.cache_version import bump_config_version

    transaction.on_commit(bump_config_version)
