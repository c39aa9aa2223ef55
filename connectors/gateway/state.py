"""What the gateway needs from the database, cached per process and refreshed when the config version moves.

Connector runtime configuration and users' secrets are read once per configuration version; a request
on the hot path touches no database unless something changed since the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from runlayer.cache_version import aread_config_version


@dataclass(frozen=True, slots=True)
class ConnectorRuntime:
    id: str
    name: str
    slug: str
    status: str
    deployment_mode: str
    transport: str
    url: str
    headers: tuple[tuple[str, str], ...]
    is_sensitive: bool
    version: int
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    inherit_env: tuple[str, ...] = ()
    catalog_entry_name: str = ""
    capabilities_version: int | None = None


_connectors: dict[str, tuple[int, ConnectorRuntime | None]] = {}
_secrets: dict[int, tuple[int, dict[str, str]]] = {}


def _load_connector(connector_id: str) -> ConnectorRuntime | None:
    from connectors.models import Connector

    close_old_connections()
    c = Connector.objects.filter(pk=connector_id).select_related("catalog_entry").first()
    if c is None:
        return None
    return ConnectorRuntime(
        id=str(c.id),
        name=c.name,
        slug=c.slug,
        status=c.status,
        deployment_mode=c.deployment_mode,
        transport=c.transport,
        url=c.url,
        headers=tuple(sorted((c.headers or {}).items())),
        is_sensitive=c.is_sensitive,
        version=c.version,
        args=tuple(str(a) for a in c.args or ()),
        env=tuple(sorted((str(k), str(v)) for k, v in (c.env or {}).items())),
        inherit_env=tuple(str(n) for n in c.inherit_env or ()),
        catalog_entry_name=c.catalog_entry.slug if c.catalog_entry_id else "",
        capabilities_version=c.capabilities_version,
    )


def _load_secrets(user_id: int) -> dict[str, str]:
    from runlayer.secrets import user_secrets_of

    close_old_connections()
    return user_secrets_of(user_id)


async def _versioned(cache: dict, key: Any, load: Callable[[Any], Any]) -> Any:
    """``cache[key]`` while the config version has not moved since it was loaded; else load it again."""
    version = await aread_config_version()
    cached = cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = await sync_to_async(load, thread_sensitive=False)(key)
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (version, value)
    return value


async def connector_runtime(connector_id: str) -> ConnectorRuntime | None:
    return await _versioned(_connectors, connector_id, _load_connector)


async def user_secrets(user_id: int) -> dict[str, str]:
    return await _versioned(_secrets, user_id, _load_secrets)
