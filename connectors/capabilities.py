"""Reading a connector's capabilities (tools, resources, resource templates, prompts) from its MCP server.

Used by the Celery sync of hosted connectors. Speaks to either protocol era: ``mode="auto"`` probes the
2026-07-28 ``server/discover`` and falls back to the ``initialize`` handshake.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

# A server that pages forever must not keep a sync running forever.
MAX_PAGES = 50


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a value: sorted keys, no insignificant white space, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


SCHEMA_FIELDS = ("inputSchema", "outputSchema")
# Metadata that a proxy layer between the MCP server and us adds to every tool it relays (FastMCP's proxy,
# used by the published runlayer CLI): not part of the server's definition.
PROXY_META_KEYS = ("_fastmcp",)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def normalized_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition as the wire means it, whatever serialised it: an absent field and a null one are the
    same (SDK 1.x dumps every unset field as null), ``meta`` is the wire's ``_meta``, and metadata a relaying
    proxy adds is not the server's. JSON Schemas are kept exactly (a null there can mean ``"default": null``)."""
    out: dict[str, Any] = {}
    for key, value in definition.items():
        if value is None:
            continue
        key = "_meta" if key == "meta" and "_meta" not in definition else key
        out[key] = value if key in SCHEMA_FIELDS else _without_nulls(value)
    meta = out.get("_meta")
    if isinstance(meta, dict) and any(k in meta for k in PROXY_META_KEYS):
        meta = {k: v for k, v in meta.items() if k not in PROXY_META_KEYS}
        if meta:
            out["_meta"] = meta
        else:
            out.pop("_meta")
    return out


def definition_hash(definition: dict[str, Any]) -> str:
    """The pin of a tool (or any capability): SHA-256 of the canonical JSON of its normalised definition."""
    return hashlib.sha256(canonical_json(normalized_definition(definition)).encode()).hexdigest()


@dataclass
class CapabilitySet:
    """Capabilities in MCP wire shape (camelCase dicts), keyed by name (by URI template for templates)."""

    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)


class CapabilityFetchError(Exception):
    """The upstream could not be reached or did not answer like an MCP server. The message is safe to show."""


def _wire(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


async def _collect(fetch: Any, attr: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor=cursor, cache_mode="bypass")
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if not cursor:
            break
    return items


async def fetch_capabilities_async(
    *, url: str, transport: str, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> CapabilitySet:
    headers = dict(headers or {})
    if transport == "sse":
        connection: Any = sse_client(url, headers=headers, timeout=timeout, sse_read_timeout=timeout)
        http_client = None
    elif transport == "streaming-http":
        http_client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout))
        connection = streamable_http_client(url, http_client=http_client)
    else:
        raise CapabilityFetchError(f"transport {transport!r} cannot be synced by the server")

    result = CapabilitySet()
    try:
        with anyio.fail_after(timeout):
            async with Client(connection, mode="auto", cache=None) as client:
                caps = client.server_capabilities
                if caps.tools is not None:
                    for tool in await _collect(client.list_tools, "tools"):
                        result.tools[tool.name] = _wire(tool)
                if caps.resources is not None:
                    for resource in await _collect(client.list_resources, "resources"):
                        result.resources[resource.uri] = _wire(resource)
                    for template in await _collect(client.list_resource_templates, "resource_templates"):
                        result.resource_templates[template.uri_template] = _wire(template)
                if caps.prompts is not None:
                    for prompt in await _collect(client.list_prompts, "prompts"):
                        result.prompts[prompt.name] = _wire(prompt)
    except TimeoutError:
        raise CapabilityFetchError(f"the MCP server did not answer within {timeout:g} s") from None
    except BaseException as exc:  # ExceptionGroups from the SDK's task groups, connection errors, MCP errors
        if isinstance(exc, (KeyboardInterrupt, SystemExit, anyio.get_cancelled_exc_class())):
            raise
        raise CapabilityFetchError(_describe(exc)) from None
    finally:
        if http_client is not None:
            await http_client.aclose()
    return result


def _describe(exc: BaseException) -> str:
    """A short, safe description of why a fetch failed (no tracebacks, no internal paths)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"the MCP server answered HTTP {exc.response.status_code}"
    if isinstance(exc, (httpx2.ConnectError, ConnectionError, OSError)):
        return "the MCP server could not be reached"
    if isinstance(exc, httpx2.TimeoutException):
        return "the MCP server timed out"
    name = type(exc).__name__
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"the MCP server failed: {name}{': ' + message if message else ''}"


def fetch_capabilities(**kwargs: Any) -> CapabilitySet:
    return anyio.run(lambda: fetch_capabilities_async(**kwargs))
