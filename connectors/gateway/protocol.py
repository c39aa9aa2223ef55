"""The gateway's wire-level pieces: constants, JSON-RPC and HTTP replies, the downstream SSE stream, the
per-request ``Exchange``, and the reshaping of results between protocol eras."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.http.request import validate_host
from mcp.shared.inbound import classify_inbound_request, find_duplicated_routing_header
from mcp_types import PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY
from mcp_types import methods as spec_methods
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from audit.models import ActionType

from .identity import Identity
from .state import ConnectorRuntime

PREFIX = "/api/v1/proxy/"
MAX_BODY = 1024 * 1024
AUDIT_VALUE_CAP = 4096

# JSON-RPC error codes
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
UPSTREAM_ERROR = -32000

FORWARDED_METHODS = {
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri", "completion/complete": None}
AUDIT_ACTIONS = {
    "tools/list": ActionType.TOOLS_LIST,
    "resources/list": ActionType.RESOURCES_LIST,
    "resources/templates/list": ActionType.RESOURCES_LIST,
    "resources/read": ActionType.RESOURCE_READ,
    "prompts/list": ActionType.PROMPTS_LIST,
    "prompts/get": ActionType.PROMPT_GET,
}
# list method → (result key, the method that uses an item, the item's name field)
LIST_FILTERS = {
    "tools/list": ("tools", "tools/call", "name"),
    "resources/list": ("resources", "resources/read", "uri"),
    "prompts/list": ("prompts", "prompts/get", "name"),
}
GUARDED_RESULTS = {"tools/call", "resources/read", "prompts/get"}
ARGUMENT_SCANNERS = ("secrets", "pii", "hidden")
RESOURCE_TYPES = {"tools/call": "tool", "prompts/get": "prompt", "resources/read": "resource"}


class HttpError(Exception):
    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, code: int = INVALID_REQUEST
    ):
        self.status, self.message, self.headers, self.code = status, message, headers or {}, code
        super().__init__(message)


@dataclass
class Exchange:
    """One downstream request as it moves through the gateway; becomes one audit event."""

    connector_id: str
    started: float = field(default_factory=time.perf_counter)
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    ip: str | None = None
    user_agent: str = ""
    identity: Identity | None = None
    connector: ConnectorRuntime | None = None
    era: str = "legacy"
    protocol_version: str = LATEST_HANDSHAKE_VERSION
    client_name: str = ""
    client_version: str = ""
    method: str = ""
    item_name: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    guard_ms: float = 0.0


def dump_json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def capped(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= AUDIT_VALUE_CAP:
        return value
    return {"truncated": True, "size": len(text), "head": text[:AUDIT_VALUE_CAP]}


def allowed_origin(origin: str) -> bool:
    parsed = urlparse(origin)
    if not parsed.scheme or not parsed.hostname:
        return False
    allowed = {urlparse(settings.PUBLIC_URL).netloc, *getattr(settings, "RUNLAYER_ALLOWED_ORIGINS", [])}
    if parsed.netloc in allowed or origin in allowed:
        return True
    return parsed.hostname in ("localhost", "127.0.0.1", "::1") and urlparse(settings.PUBLIC_URL).hostname in (
        "localhost",
        "127.0.0.1",
        "::1",
    )


def check_transport(headers: dict[str, str]) -> None:
    """DNS-rebinding guard for the raw ASGI endpoints: a known ``Host`` and, if any, an allowed ``Origin``."""
    host = headers.get("host", "")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if not host or not validate_host(hostname, settings.ALLOWED_HOSTS):
        raise HttpError(421, "unknown Host")
    origin = headers.get("origin")
    if origin and not allowed_origin(origin):
        raise HttpError(403, "Origin not allowed")


async def read_body(receive, headers: dict[str, str], cap: int) -> bytes:
    """The request body, refused with 413 past ``cap`` bytes (declared or actually sent)."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, "bad Content-Length")
        if int(declared) > cap:
            raise HttpError(413, f"the request body is larger than {cap} bytes")
    chunks, size = [], 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise HttpError(400, "client disconnected")
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise HttpError(413, f"the request body is larger than {cap} bytes")
        chunks.append(chunk)
        if not event.get("more_body"):
            return b"".join(chunks)


def advertised_capabilities(upstream: dict[str, Any]) -> dict[str, Any]:
    """The upstream's capabilities, less what the gateway cannot relay (no server-to-client stream)."""
    caps: dict[str, Any] = {}
    for key in ("tools", "prompts"):
        if key in upstream:
            caps[key] = {"listChanged": False}
    if "resources" in upstream:
        caps["resources"] = {"listChanged": False, "subscribe": False}
    for key in ("completions", "logging"):
        if key in upstream:
            caps[key] = upstream[key] if isinstance(upstream[key], dict) else {}
    return caps


def shape_result(ex: Exchange, method: str, response: dict[str, Any]) -> dict[str, Any]:
    """The result in the shape of the client's protocol era (the upstream may speak the other one)."""
    result = response.get("result")
    if not isinstance(result, dict):
        return response
    modern_client = ex.era == "modern"
    modern_result = "resultType" in result
    if modern_client == modern_result and (not modern_client or SERVER_INFO_META_KEY in (result.get("_meta") or {})):
        return response
    try:
        if modern_client:
            # Fields a 2026-era result requires; models that do not define them ignore them.
            data = {"ttlMs": 0, "cacheScope": "private", "resultType": "complete", **result}
            shaped = spec_methods.serialize_server_result(method, ex.protocol_version, data)
            shaped.setdefault("resultType", "complete")
            meta = shaped.get("_meta") if isinstance(shaped.get("_meta"), dict) else {}
            assert ex.connector is not None
            shaped["_meta"] = {
                **meta,
                SERVER_INFO_META_KEY: {"name": ex.connector.slug, "version": str(ex.connector.version)},
            }
        else:
            shaped = spec_methods.serialize_server_result(method, ex.protocol_version, result)
            shaped.pop("resultType", None)
            meta = shaped.get("_meta")
            if isinstance(meta, dict):
                meta.pop(SERVER_INFO_META_KEY, None)
                if not meta:
                    shaped.pop("_meta")
    except (KeyError, ValueError):
        return response  # not a spec method for this version: pass through as it is
    return {**response, "result": shaped}


async def send_json(send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = dump_json(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    for key, value in (headers or {}).items():
        raw.append((key.encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_empty(send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class EventStream:
    """A downstream SSE response, started when the first progress notification arrives."""

    def __init__(self, send) -> None:
        self.send = send
        self.started = False

    async def _start(self) -> None:
        if not self.started:
            self.started = True
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
                }
            )

    async def notify(self, message: dict[str, Any]) -> None:
        await self._start()
        await self.send(
            {
                "type": "http.response.body",
                "body": b"event: message\ndata: " + dump_json(message) + b"\n\n",
                "more_body": True,
            }
        )

    async def close_with(self, message: dict[str, Any]) -> None:
        await self._start()
        await self.send(
            {
                "type": "http.response.body",
                "body": b"event: message\ndata: " + dump_json(message) + b"\n\n",
                "more_body": False,
            }
        )


def is_modern(params: dict[str, Any] | None) -> bool:
    meta = params.get("_meta") if params else None
    return isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta


def modern_rejection(message: dict[str, Any], headers: dict[str, str], scope) -> dict[str, Any] | None:
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    duplicated = find_duplicated_routing_header(raw)
    if duplicated is not None:
        return rpc_error(message.get("id"), -32001, f"{duplicated} header appears more than once")
    verdict = classify_inbound_request(message, headers=headers)
    if hasattr(verdict, "code"):
        return rpc_error(message.get("id"), verdict.code, verdict.message, verdict.data)
    return None
