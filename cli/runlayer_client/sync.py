"""Capability upload for ``runlayer run``: what the local MCP offers, in MCP wire shapes, keyed by name."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("runlayer.sync")

MAX_PAGES = 50


def _wire(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


async def _collect(fetch, attr: str) -> list[Any]:
    items: list[Any] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor=cursor, cache_mode="bypass")
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if not cursor:
            break
    return items


async def collect_capabilities(client) -> dict[str, Any]:
    caps = client.server_capabilities
    body: dict[str, Any] = {"tools": {}, "resources": {}, "resource_templates": {}, "prompts": {}}
    if caps.tools is not None:
        body["tools"] = {t.name: _wire(t) for t in await _collect(client.list_tools, "tools")}
    if caps.resources is not None:
        body["resources"] = {r.uri: _wire(r) for r in await _collect(client.list_resources, "resources")}
        templates = await _collect(client.list_resource_templates, "resource_templates")
        body["resource_templates"] = {t.uri_template: _wire(t) for t in templates}
    if caps.prompts is not None:
        body["prompts"] = {p.name: _wire(p) for p in await _collect(client.list_prompts, "prompts")}
    body["synced_at"] = datetime.now(UTC).isoformat()
    return body


def _source(details: dict[str, Any]) -> tuple:
    config = details.get("transport_config") or {}
    return (
        details.get("url"),
        details.get("transport_type"),
        tuple(config.get("args") or ()),
        tuple(sorted((config.get("env") or {}).items())),
        tuple(sorted((config.get("headers") or {}).items())),
    )


def same_source(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether two versions of a connector's details still run the same local MCP."""
    return _source(before) == _source(after)


async def upload(
    api, server_id: str, details: dict[str, Any], collect: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    """Send what the local MCP offers when the server asks (``sync_required``); on 409 re-read the details and
    retry once if the configuration they describe is still the one running."""
    try:
        body = await collect()
    except Exception as exc:
        logger.warning("capability sync skipped: %s", exc)
        return
    version = details.get("version")
    for _ in range(2):
        try:
            response = await api.request(
                "POST", f"/api/v1/local/{server_id}/capabilities", params={"server_version": version}, json=body
            )
            if response.status_code != 409:
                logger.info("capabilities uploaded: HTTP %s", response.status_code)
                return
            current = await api.call("GET", f"/api/v1/local/{server_id}")
        except Exception as exc:
            logger.warning("capability sync failed: %s", exc)
            return
        if not same_source(details, current):
            logger.info("capability sync skipped: the connector's configuration changed; restart to pick it up")
            return
        version = current.get("version")
