"""Database work of the local API (run off the event loop): alias lookup and capability uploads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import close_old_connections, transaction
from django.db.models import Q

from audit.models import ActionType
from audit.services import audit_record
from connectors.capabilities import CapabilitySet, normalized_definition
from connectors.gateway.protocol import HttpError
from connectors.models import Connector, DeploymentMode
from connectors.services import connector_observe_tools, connector_store_capabilities

MAX_ITEMS = 2000
MAX_NAME = 500


def local_ids_matching(target: str) -> list[str]:
    """Local connectors an alias may mean, best match first: slug, then name, then catalog entry."""
    close_old_connections()
    found = Connector.objects.filter(deployment_mode=DeploymentMode.LOCAL).filter(
        Q(slug=target) | Q(name__iexact=target) | Q(catalog_entry__slug=target)
    )
    rows = list(found.values_list("id", "slug", "name")[:50])
    rows.sort(key=lambda r: (r[1] != target, r[2].lower() != target.lower(), r[2]))
    return [str(r[0]) for r in rows]


def _items(body: dict[str, Any], key: str, name_key: str) -> dict[str, dict[str, Any]]:
    value = body.get(key, {})
    if value is None:
        return {}
    if isinstance(value, list):  # tolerate a plain list of items
        value = {item.get(name_key): item for item in value if isinstance(item, dict)}
    if not isinstance(value, dict):
        raise HttpError(400, f"{key} must be an object mapping names to MCP {key} definitions")
    if len(value) > MAX_ITEMS:
        raise HttpError(400, f"too many {key}: at most {MAX_ITEMS}")
    items: dict[str, dict[str, Any]] = {}
    for name, definition in value.items():
        if not isinstance(name, str) or not name or len(name) > MAX_NAME or not isinstance(definition, dict):
            raise HttpError(400, f"{key}: each entry must be a non-empty name mapped to an object")
        items[name] = normalized_definition(definition)
    return items


def parse_capabilities(body: dict[str, Any]) -> CapabilitySet:
    """The upload's tools, resources and prompts (MCP wire shapes), or a 400 naming what is wrong."""
    return CapabilitySet(
        tools=_items(body, "tools", "name"),
        resources=_items(body, "resources", "uri"),
        resource_templates=_items(body, "resource_templates", "uriTemplate"),
        prompts=_items(body, "prompts", "name"),
    )


def capabilities_upload(
    *, connector_id: str, user_id: int | None, server_version: int | None, capabilities: CapabilitySet
) -> dict[str, Any]:
    """Store what the CLI's local MCP reported, through the same pinning and scanning as hosted syncs.

    A ``server_version`` older than the connector's is refused with 409: the upload describes a
    configuration that no longer exists (the CLI re-reads the details and retries).
    """
    close_old_connections()
    with transaction.atomic():
        connector = Connector.objects.select_for_update().get(pk=connector_id)
        if server_version is not None and server_version != connector.version:
            raise HttpError(
                409,
                f"stale server_version {server_version}: the connector is at version {connector.version}; "
                "re-read its details and upload again",
            )
        changes = connector_store_capabilities(
            connector=connector, capabilities=capabilities, connector_version=connector.version
        )
    report = connector_observe_tools(connector=connector, tools=capabilities.tools)
    actor = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    audit_record(
        action_type=ActionType.SERVER_CAPABILITIES_SYNCED,
        actor=actor,
        server=connector,
        resource_type="server",
        resource_name=connector.name,
        details={**changes.as_dict(), "source": "cli", "blocked": sorted({*report["changed"], *report["flagged"]})},
    )
    return {
        **changes.as_dict(),
        "blocked": sorted({*report["changed"], *report["flagged"]}),
        "version": connector.version,
    }
