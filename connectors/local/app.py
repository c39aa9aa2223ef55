"""The local API behind ``runlayer run``: ``/api/v1/local/...`` (contract: shared/docs/wire-contract.md).

The CLI on the user's machine runs the real local MCP; before and after each governed request it asks
here. The same decision function (``policies.engine.decide``), the same ToolGuard scanners and pins,
and the same batched audit writer as the hosted gateway apply, so a rule means the same thing wherever
the MCP runs. A raw ASGI app like the gateway: two round trips per call must cost well under the
gateway's own overhead, so Django's request cycle is not on this path.

- ``GET  /api/v1/local/resolve?target=NAME`` → ``{"server_id"}`` for an alias (slug, name, catalog entry)
- ``GET  /api/v1/local/{id}`` → how to run it (command or local URL, args, env, headers, version)
- ``POST /api/v1/local/{id}/capabilities?server_version=V`` → store, pin and scan what the MCP reported
- ``POST /api/v1/local/{id}/pre`` → decide and scan arguments before the local MCP is called
- ``POST /api/v1/local/{id}/post`` → filter lists, scan results, audit exactly once
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings

from audit.models import ActionType
from connectors.gateway.governance import guard_tool_list, scan_arguments, scan_result, visible_items
from connectors.gateway.identity import authenticate, credential_from_headers
from connectors.gateway.protocol import (
    Exchange,
    HttpError,
    capped,
    check_transport,
    read_body,
    send_json,
)
from connectors.gateway.recording import audit, audit_call
from connectors.gateway.state import ConnectorRuntime, connector_runtime, user_secrets
from policies.cache import acurrent_rules
from policies.engine import CallContext, decide
from runlayer.secrets import MissingSecret, resolve_headers

from . import store

logger = logging.getLogger(__name__)

PREFIX = "/api/v1/local/"
MAX_BODY = 1024 * 1024
MAX_CAPABILITIES_BODY = 8 * 1024 * 1024
# method → the params key naming the item it acts on
NAMED = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}
LISTS = {"tools/list": "tools", "resources/list": "resources", "prompts/list": "prompts"}
SYNTHETIC_TOOL = "runlayer_unavailable"


def _text_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


class LocalApi:
    """The ASGI app mounted at ``/api/v1/local/``."""

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        ex = Exchange(connector_id="")
        try:
            await self._handle(scope, receive, send, ex)
        except HttpError as exc:
            await send_json(send, exc.status, {"detail": exc.message}, exc.headers)
        except Exception:
            logger.exception("local API error (correlation %s)", ex.correlation_id)
            await send_json(send, 500, {"detail": f"internal error (correlation id {ex.correlation_id})"})

    async def _handle(self, scope, receive, send, ex: Exchange) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        check_transport(headers)
        client = scope.get("client")
        ex.ip = client[0] if client else None
        ex.user_agent = headers.get("user-agent", "")[:200]
        ex.client_name, _, ex.client_version = headers.get("x-runlayer-mcp-client", "").partition("/")
        ex.client_name = ex.client_name[:200] or ex.user_agent[:100]
        ex.client_version = ex.client_version[:100]

        parts = [p for p in scope["path"][len(PREFIX) :].split("/") if p]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "access_token" in query:
            raise HttpError(401, "credentials are accepted in headers only, not in the URL")
        if parts and parts[0] != "resolve":
            try:
                ex.connector_id = str(uuid.UUID(parts[0]))
            except ValueError:
                raise HttpError(404, f"{parts[0]!r} is not a connector id") from None
        await self._authenticate(headers, ex)

        method = scope["method"]
        if parts == ["resolve"] and method == "GET":
            await send_json(send, 200, await self._resolve(ex, (query.get("target") or [""])[0]))
            return
        if len(parts) == 1 and method == "GET":
            await send_json(send, 200, await self._details(ex))
            return
        if len(parts) == 2 and parts[1] in ("capabilities", "pre", "post"):
            if method != "POST":
                raise HttpError(405, "method not allowed", headers={"allow": "POST"})
            cap = MAX_CAPABILITIES_BODY if parts[1] == "capabilities" else MAX_BODY
            body = await self._read_json(receive, headers, cap)
            if parts[1] == "capabilities":
                version = (query.get("server_version") or [None])[0]
                await send_json(send, 200, await self._capabilities(ex, body, version))
            elif parts[1] == "pre":
                await send_json(send, 200, await self._pre(ex, body))
            else:
                await send_json(send, 200, await self._post(ex, body))
            return
        raise HttpError(404, "Not found.")

    # -- checks ----------------------------------------------------------------------------------
    async def _authenticate(self, headers: dict[str, str], ex: Exchange) -> None:
        credential = credential_from_headers(headers)
        reason = "missing credentials: run `runlayer login` or pass --secret" if credential is None else ""
        identity = await authenticate(credential, ip=ex.ip) if credential else None
        if identity is None:
            reason = reason or "invalid, expired or revoked API key: run `runlayer login` again"
            ex.method = "local"
            audit(ex, ActionType.AUTH_FAILED, details={"reason": reason, "user_agent": ex.user_agent})
            metadata = f"{settings.PUBLIC_URL}/.well-known/oauth-protected-resource"
            raise HttpError(401, reason, headers={"www-authenticate": f'Bearer resource_metadata="{metadata}"'})
        ex.identity = identity
        from connectors.gateway.app import gateway

        await gateway.check_rate(ex)

    async def _read_json(self, receive, headers: dict[str, str], cap: int) -> dict[str, Any]:
        raw = await read_body(receive, headers, cap)
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            raise HttpError(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        return body

    async def _connector(self, ex: Exchange) -> ConnectorRuntime:
        connector = await connector_runtime(ex.connector_id)
        if connector is None:
            raise HttpError(404, f"no connector with id {ex.connector_id}")
        if connector.deployment_mode != "local":
            raise HttpError(
                404,
                f"{connector.name!r} is a hosted connector: point your AI client at "
                f"{settings.PUBLIC_URL}/api/v1/proxy/{connector.id}/mcp instead of `runlayer run`",
            )
        ex.connector = connector
        return connector

    async def _decide(self, ex: Exchange, method: str, name: str | None = None, arguments: Any = None):
        assert ex.identity is not None
        ctx = CallContext(
            principal=ex.identity.principal,
            connector_id=ex.connector_id,
            method=method,
            name=name,
            arguments=arguments if isinstance(arguments, dict) else None,
            client_name=ex.client_name,
            ip=ex.ip,
        )
        return decide(await acurrent_rules(), ctx)

    async def _open(self, ex: Exchange, method: str) -> ConnectorRuntime:
        """The connector, once the caller may use it at all (else 403 and an ``access_denied`` event)."""
        connector = await self._connector(ex)
        ex.method = method
        decision = await self._decide(ex, "initialize")
        if not decision.allowed:
            audit(ex, ActionType.ACCESS_DENIED, details={"reason": decision.reason, "rule": decision.rule})
            raise HttpError(403, decision.reason)
        return connector

    # -- endpoints -------------------------------------------------------------------------------
    async def _resolve(self, ex: Exchange, target: str) -> dict[str, Any]:
        target = target.strip()
        if not target or len(target) > 200:
            raise HttpError(400, "pass ?target=NAME: the connector's slug, name or catalog entry")
        for connector_id in await sync_to_async(store.local_ids_matching, thread_sensitive=False)(target):
            ex.connector_id = connector_id
            if (await self._decide(ex, "initialize")).allowed:
                return {"server_id": connector_id}
        raise HttpError(404, f"no local connector named {target!r} is available to you")

    async def _details(self, ex: Exchange) -> dict[str, Any]:
        connector = await self._open(ex, "local/details")
        env, headers = dict(connector.env), dict(connector.headers)
        if any("{{" in v for v in (*env.values(), *headers.values())):
            assert ex.identity is not None
            user_id = ex.identity.principal.user_id
            secrets = await user_secrets(user_id) if user_id else {}
            try:
                env, headers = resolve_headers(env, secrets), resolve_headers(headers, secrets)
            except MissingSecret as exc:
                raise HttpError(400, str(exc)) from None
        return {
            "id": connector.id,
            "name": connector.name,
            "slug": connector.slug,
            "status": connector.status,
            "url": connector.url,
            "transport_type": connector.transport,
            "transport_config": {
                "args": list(connector.args),
                "env": env,
                "headers": headers,
                "inherit_env": list(connector.inherit_env),
            },
            "deployment_mode": connector.deployment_mode,
            "version": connector.version,
            "sync_required": connector.capabilities_version != connector.version,
            "catalog_entry_name": connector.catalog_entry_name or None,
            "auth_type": "none",
        }

    async def _capabilities(self, ex: Exchange, body: dict[str, Any], version: str | None) -> dict[str, Any]:
        connector = await self._open(ex, "local/capabilities")
        if version is not None and not version.isdigit():
            raise HttpError(400, "server_version must be an integer")
        capabilities = store.parse_capabilities(body)
        assert ex.identity is not None
        return await sync_to_async(store.capabilities_upload, thread_sensitive=False)(
            connector_id=connector.id,
            user_id=ex.identity.principal.user_id,
            server_version=int(version) if version is not None else None,
            capabilities=capabilities,
        )

    async def _pre(self, ex: Exchange, body: dict[str, Any]) -> dict[str, Any]:
        method, params = _method_and_params(body)
        connector = await self._connector(ex)
        ex.method = method
        reply: dict[str, Any] = {"correlation_id": ex.correlation_id, "quick_tool_result": None, "modified_args": None}
        name_key = NAMED.get(method)
        if name_key is None:
            return reply  # lists and the rest are judged on the way back (post), where the items are known
        name = params.get(name_key)
        if not isinstance(name, str) or not name:
            raise HttpError(400, f"params.{name_key} must be a non-empty string for {method}")
        ex.item_name = name[:500]
        arguments = params.get("arguments") if method == "tools/call" else None
        if arguments is not None and not isinstance(arguments, dict):
            raise HttpError(400, "params.arguments must be an object")
        decision = await self._decide(ex, method, name, arguments)
        if decision.allowed and method == "tools/call" and name == SYNTHETIC_TOOL:
            text = (
                f"{connector.name} has no tools right now: its local MCP server did not start or stopped. "
                "See the log file `runlayer run` names on stderr, fix the server, and restart your AI client."
            )
            audit_call(ex, method, arguments, None, error=("unavailable", "the local MCP server is not running"))
            reply["quick_tool_result"] = _text_blocks(text)
            return reply
        if not decision.allowed:
            details: dict[str, Any] = {"reason": decision.reason, "rule": decision.rule}
            if arguments is not None and not connector.is_sensitive:
                details["arguments"] = capped(arguments)
            audit(ex, ActionType.ACCESS_DENIED, details=details)
            reply["quick_tool_result"] = _text_blocks(f"Blocked by Runlayer: {decision.reason}")
            return reply
        if arguments:
            actions = (await acurrent_rules()).guard_actions(ex.connector_id)
            text, scanned = scan_arguments(ex, arguments, actions)
            if text is not None:
                reply["quick_tool_result"] = _text_blocks(text)
                return reply
            if scanned.masked:
                reply["modified_args"] = scanned.value
        return reply

    async def _post(self, ex: Exchange, body: dict[str, Any]) -> Any:
        method, params = _method_and_params(body)
        connector = await self._connector(ex)
        correlation_id = body.get("correlation_id")
        if not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= 100:
            raise HttpError(400, "correlation_id (from pre) is required")
        ex.correlation_id, ex.method = correlation_id, method
        duration = body.get("duration_ms")
        if isinstance(duration, int | float) and 0 <= duration < 86_400_000:
            ex.started = time.perf_counter() - duration / 1000
        error = _upstream_error(body.get("upstream_error"))
        result = body.get("result")
        name_key = NAMED.get(method)
        name = params.get(name_key) if name_key else None
        if name_key is not None and (not isinstance(name, str) or not name):
            raise HttpError(400, f"params.{name_key} must be a non-empty string for {method}")
        ex.item_name = (name or "")[:500]
        arguments = params.get("arguments") if method == "tools/call" else None

        if method in LISTS:
            return await self._post_list(
                ex, connector, method, result, error, bool(body.get("inject_synthetic_tool_on_policy_block"))
            )

        decision = await self._decide(ex, method if name_key else "initialize", name, arguments)
        if not decision.allowed:
            audit(ex, ActionType.ACCESS_DENIED, details={"reason": decision.reason, "rule": decision.rule})
            return {"modified_output": _blocked_result(f"Blocked by Runlayer: {decision.reason}")}
        if error is not None:
            audit_call(ex, method, arguments, None, error=error)
            return {"modified_output": None}
        if name_key is None or not isinstance(result, dict):
            audit_call(ex, method, arguments, result if isinstance(result, dict) else None, error=None)
            return {"modified_output": None}
        actions = (await acurrent_rules()).guard_actions(ex.connector_id)
        text, scanned = scan_result(ex, result, actions, name)
        if text is not None:
            return {"modified_output": _blocked_result(text)}
        failed = method == "tools/call" and bool(scanned.value.get("isError"))
        audit_call(
            ex, method, arguments, scanned.value, error=("tool_error", "the tool reported an error") if failed else None
        )
        return {"modified_output": scanned.value if scanned.masked else None}

    async def _post_list(
        self, ex: Exchange, connector: ConnectorRuntime, method: str, result: Any, error, inject: bool
    ) -> Any:
        key = LISTS[method]
        # The published CLI posts tools/list results as a bare list; ours posts the list result object.
        items = result if isinstance(result, list) else (result or {}).get(key) if isinstance(result, dict) else None
        items = items if isinstance(items, list) else []
        decision = await self._decide(ex, "initialize")
        rules = await acurrent_rules()
        if not decision.allowed:
            audit(ex, ActionType.ACCESS_DENIED, details={"reason": decision.reason, "rule": decision.rule})
            visible: list[dict[str, Any]] = []
            reason = decision.reason
        elif error is not None:
            audit_call(ex, method, None, None, error=error)
            visible, reason = [], f"the local MCP server could not be reached ({error[0]})"
        else:
            assert ex.identity is not None
            visible = visible_items(
                rules,
                principal=ex.identity.principal,
                connector_id=ex.connector_id,
                list_method=method,
                items=items,
                client_name=ex.client_name,
                ip=ex.ip,
            )
            if method == "tools/list":
                action = rules.guard_actions(ex.connector_id).get("definition", "block")
                visible = await guard_tool_list(
                    rules, connector_id=ex.connector_id, tools=visible, definition_action=action
                )
            ex.item_name = ""
            audit_call(ex, method, None, {key: visible}, error=None)
            reason = ""
        if method == "tools/list" and inject and not visible and reason:
            visible = [_synthetic_tool(connector.name, reason)]
        if isinstance(result, list) or method == "tools/list" and result is None:
            return visible
        return {"modified_output": {**(result if isinstance(result, dict) else {}), key: visible}}


def _method_and_params(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    method = body.get("method")
    if not isinstance(method, str) or not method or len(method) > 100:
        raise HttpError(400, "method must be an MCP method name such as 'tools/call'")
    params = body.get("params")
    if params is None:
        return method, {}
    if not isinstance(params, dict):
        raise HttpError(400, "params must be an object or null")
    return method, params


def _upstream_error(value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HttpError(400, "upstream_error must be an object with type and message, or null")
    return str(value.get("type", "error"))[:100] or "error", str(value.get("message", ""))[:500]


def _blocked_result(text: str) -> dict[str, Any]:
    return {"content": _text_blocks(text), "isError": True}


def _synthetic_tool(server_name: str, reason: str) -> dict[str, Any]:
    """Shown instead of an empty list, so the user learns why the connector has no tools."""
    return {
        "name": SYNTHETIC_TOOL,
        "description": f"{server_name} is not available: {reason}. Calling this tool explains what to do.",
        "inputSchema": {"type": "object", "properties": {}},
    }


local_api = LocalApi()
