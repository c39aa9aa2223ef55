"""The hosted MCP gateway: ``/api/v1/proxy/<connector id>/mcp``, a raw ASGI endpoint in front of Django.

Per request: transport checks (Host, Origin, size, content type), authentication (API key or OAuth
token, cached), the protocol era (``initialize`` handshake with a signed session id, or a 2026-07-28
self-contained request), authorization through ``policies.engine.decide``, forwarding through the
upstream pool, filtering of lists, and exactly one audit event handed to the batched writer.

Django's middleware does not run here; everything it would check is checked explicitly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS
from mcp_types import CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

from audit.models import ActionType
from audit.writer import get_writer
from policies.cache import acurrent_rules
from policies.engine import CallContext, decide
from runlayer.secrets import MissingSecret, resolve_headers

from .governance import guard_tool_list, scan_arguments, scan_result, visible_items
from .identity import authenticate, credential_from_headers
from .protocol import (
    FORWARDED_METHODS,
    GUARDED_RESULTS,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LIST_FILTERS,
    MAX_BODY,
    METHOD_NOT_FOUND,
    NAMED,
    PARSE_ERROR,
    PREFIX,
    UPSTREAM_ERROR,
    EventStream,
    Exchange,
    HttpError,
    advertised_capabilities,
    capped,
    check_transport,
    is_modern,
    modern_rejection,
    read_body,
    rpc_error,
    send_empty,
    send_json,
    shape_result,
)
from .ratelimit import RateLimiter, limiter_from_settings
from .recording import audit, audit_call
from .sessions import session_check, session_issue
from .state import connector_runtime, user_secrets
from .upstream import Limits, UpstreamError, UpstreamPool, UpstreamSpec

logger = logging.getLogger(__name__)


class Gateway:
    """The ASGI app mounted at ``/api/v1/proxy/``. Enter ``lifespan()`` once per process."""

    def __init__(self) -> None:
        self.pool: UpstreamPool | None = None
        self.limiter: RateLimiter | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        self.pool = UpstreamPool(
            Limits(
                call_timeout=float(settings.RUNLAYER_UPSTREAM_TIMEOUT_SECONDS),
                max_response_bytes=settings.RUNLAYER_MAX_RESPONSE_BYTES,
                max_concurrency=settings.RUNLAYER_UPSTREAM_CONCURRENCY,
            )
        )
        self.limiter = limiter_from_settings()
        writer = get_writer()
        try:
            yield
        finally:
            await self.pool.close()
            await self.limiter.aclose()
            self.pool = None
            writer.flush(timeout=30)

    # -- ASGI entry ------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        path: str = scope["path"]
        rest = path[len(PREFIX) :]
        connector_id, _, tail = rest.partition("/")
        if tail != "mcp":
            await send_json(send, 404, {"detail": "Not found."})
            return
        try:
            uuid.UUID(connector_id)
        except ValueError:
            await send_json(send, 404, {"detail": "Not found."})
            return
        ex = Exchange(connector_id=connector_id)
        try:
            await self._handle(scope, receive, send, ex)
        except HttpError as exc:
            body = (
                rpc_error(None, exc.code, exc.message)
                if exc.status != 401
                else {"error": "unauthorized", "detail": exc.message}
            )
            await send_json(send, exc.status, body, exc.headers)
        except Exception:
            logger.exception("gateway error (correlation %s)", ex.correlation_id)
            await send_json(
                send, 500, rpc_error(None, INTERNAL_ERROR, f"internal error (correlation id {ex.correlation_id})")
            )

    async def _handle(self, scope, receive, send, ex: Exchange) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        ex.ip = client[0] if client else None
        ex.user_agent = headers.get("user-agent", "")[:200]
        check_transport(headers)

        # Authentication first: nothing about the connector is revealed to an anonymous caller.
        if "access_token" in parse_qs(scope.get("query_string", b"").decode("latin-1")):
            raise self._unauthorized(ex, "credentials are accepted in headers only, not in the URL")
        credential = credential_from_headers(headers)
        if credential is None:
            raise self._unauthorized(ex, "missing credentials: send an API key or an OAuth bearer token")
        identity = await authenticate(credential, ip=ex.ip)
        if identity is None:
            raise self._unauthorized(ex, "invalid, expired or revoked credentials")
        ex.identity = identity
        await self.check_rate(ex)

        method = scope["method"]
        if method == "DELETE":
            self._session_for(headers, ex, required=True)
            await send_json(send, 200, {})
            return
        if method == "GET":
            raise HttpError(
                405, "this endpoint does not offer a server-to-client stream", headers={"allow": "POST, DELETE"}
            )
        if method != "POST":
            raise HttpError(405, "method not allowed", headers={"allow": "POST, DELETE"})

        content_type = headers.get("content-type", "")
        if "application/json" not in content_type:
            raise HttpError(415, "the body must be application/json")
        accept = headers.get("accept", "")
        if accept and "application/json" not in accept and "*/*" not in accept:
            raise HttpError(406, "the client must accept application/json")
        body = await read_body(receive, headers, MAX_BODY)
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            raise HttpError(400, "Parse error: the body is not valid JSON", code=PARSE_ERROR) from None
        if isinstance(message, list):
            raise HttpError(400, "JSON-RPC batches are not supported")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise HttpError(400, "not a JSON-RPC 2.0 message")

        connector = await connector_runtime(ex.connector_id)
        if connector is None or connector.deployment_mode != "hosted":
            raise HttpError(404, "no such hosted connector")
        ex.connector = connector

        rpc_method = message.get("method")
        request_id = message.get("id")
        if not isinstance(rpc_method, str):
            # A response or garbage: clients do not send responses to us (we never ask them anything).
            await send_empty(send, 202)
            return
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            await self._reply(send, ex, rpc_error(request_id, INVALID_PARAMS, "params must be an object"), status=400)
            return
        ex.method = rpc_method

        if "id" not in message:  # a notification: acknowledged, nothing to forward
            await send_empty(send, 202)
            return

        if rpc_method == "initialize":
            await self._initialize(send, ex, request_id, params or {})
            return
        if is_modern(params):
            rejection = modern_rejection(message, headers, scope)
            if rejection is not None:
                await self._reply(
                    send, ex, rejection, status=ERROR_CODE_HTTP_STATUS.get(rejection["error"]["code"], 400)
                )
                return
            meta = params["_meta"]
            ex.era, ex.protocol_version = "modern", meta[PROTOCOL_VERSION_META_KEY]
            info = meta.get(CLIENT_INFO_META_KEY) or {}
            if isinstance(info, dict):
                ex.client_name, ex.client_version = str(info.get("name", ""))[:200], str(info.get("version", ""))[:100]
        else:
            session = self._session_for(headers, ex, required=True)
            version_header = headers.get("mcp-protocol-version")
            if version_header is not None and version_header not in HANDSHAKE_PROTOCOL_VERSIONS:
                raise HttpError(400, f"Bad Request: unsupported MCP-Protocol-Version {version_header!r}")
            ex.protocol_version = session.protocol_version
            ex.client_name, ex.client_version = session.client_name, session.client_version
        if not ex.client_name:
            ex.client_name = ex.user_agent[:100]

        await self._dispatch(send, ex, request_id, rpc_method, params, headers)

    # -- checks ----------------------------------------------------------------------------------
    async def check_rate(self, ex: Exchange) -> None:
        """429 with ``Retry-After`` (and an ``access_denied`` event) once the caller is over the limit."""
        if self.limiter is None or ex.identity is None:
            return
        principal = ex.identity.principal
        key = f"agent:{principal.agent_id}" if principal.agent_id else f"user:{principal.user_id}"
        retry_after = await self.limiter.hit(key)
        if retry_after is not None:
            audit(ex, ActionType.ACCESS_DENIED, details={"reason": "rate limit exceeded", "rule": "rate-limit"})
            raise HttpError(
                429,
                f"rate limit of {self.limiter.per_minute} requests per minute exceeded",
                headers={"retry-after": str(int(retry_after))},
            )

    def _unauthorized(self, ex: Exchange, reason: str) -> HttpError:
        audit(ex, ActionType.AUTH_FAILED, details={"reason": reason, "user_agent": ex.user_agent})
        metadata = f"{settings.PUBLIC_URL}/.well-known/oauth-protected-resource{PREFIX}{ex.connector_id}/mcp"
        return HttpError(
            401,
            reason,
            headers={"www-authenticate": f'Bearer error="invalid_token", resource_metadata="{metadata}"'},
        )

    def _session_for(self, headers: dict[str, str], ex: Exchange, *, required: bool):
        session_id = headers.get("mcp-session-id")
        if not session_id:
            raise HttpError(400, "Bad Request: missing Mcp-Session-Id (send initialize first)")
        session = session_check(session_id)
        assert ex.identity is not None
        if (
            session is None
            or session.connector_id != ex.connector_id
            or session.user_id != ex.identity.principal.user_id
        ):
            # Unknown, forged, expired, or opened by someone else or on another connector: all look the same.
            raise HttpError(404, "Session not found")
        return session

    # -- methods ---------------------------------------------------------------------------------
    async def _initialize(self, send, ex: Exchange, request_id: Any, params: dict[str, Any]) -> None:
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            await self._reply(
                send, ex, rpc_error(request_id, INVALID_PARAMS, "protocolVersion is required"), status=400
            )
            return
        negotiated = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        info = params.get("clientInfo") if isinstance(params.get("clientInfo"), dict) else {}
        ex.client_name = str(info.get("name", ""))[:200] or ex.user_agent[:100]
        ex.client_version = str(info.get("version", ""))[:100]
        ex.protocol_version = negotiated
        upstream_info = await self._open_connector(send, ex, request_id)
        if upstream_info is None:
            return
        assert ex.identity is not None and ex.connector is not None
        session_id = session_issue(
            user_id=ex.identity.principal.user_id,
            agent_id=ex.identity.principal.agent_id,
            connector_id=ex.connector_id,
            protocol_version=negotiated,
            client_name=ex.client_name,
            client_version=ex.client_version,
        )
        result = {
            "protocolVersion": negotiated,
            "capabilities": advertised_capabilities(upstream_info.capabilities),
            "serverInfo": {"name": ex.connector.slug, "title": ex.connector.name, "version": str(ex.connector.version)},
        }
        if upstream_info.instructions:
            result["instructions"] = upstream_info.instructions
        audit(ex, ActionType.AUTH_SUCCESS, details={"protocol_version": negotiated})
        await self._reply(send, ex, {"jsonrpc": "2.0", "id": request_id, "result": result}, session_id=session_id)

    async def _decide(self, ex: Exchange, name: str | None, arguments: Any):
        assert ex.identity is not None
        rules = await acurrent_rules()
        ctx = CallContext(
            principal=ex.identity.principal,
            connector_id=ex.connector_id,
            method=ex.method,
            name=name,
            arguments=arguments if isinstance(arguments, dict) else None,
            client_name=ex.client_name,
            ip=ex.ip,
        )
        return decide(rules, ctx)

    async def _upstream(self, ex: Exchange):
        assert ex.connector is not None and ex.identity is not None and self.pool is not None
        headers = dict(ex.connector.headers)
        if any("{{" in v for v in headers.values()):
            secrets = await user_secrets(ex.identity.principal.user_id) if ex.identity.principal.user_id else {}
            headers = resolve_headers(headers, secrets)
        spec = UpstreamSpec(
            connector_id=ex.connector.id,
            name=ex.connector.name,
            transport=ex.connector.transport,
            url=ex.connector.url,
            headers=tuple(sorted(headers.items())),
            version=ex.connector.version,
        )
        return self.pool.get(spec)

    async def _upstream_info(self, send, ex: Exchange, request_id: Any):
        try:
            upstream = await self._upstream(ex)
            return await upstream.ready()
        except MissingSecret as exc:
            audit(
                ex,
                ActionType.TOOL_CALL_FAILURE,
                details={"upstream_error": {"type": "missing_secret", "message": str(exc)}},
            )
            await self._reply(send, ex, rpc_error(request_id, INVALID_REQUEST, str(exc)))
        except UpstreamError as exc:
            audit(ex, ActionType.TOOL_CALL_FAILURE, details={"upstream_error": {"type": exc.kind, "message": str(exc)}})
            await self._reply(send, ex, rpc_error(request_id, UPSTREAM_ERROR, str(exc)))
        return None

    async def _dispatch(self, send, ex: Exchange, request_id, method: str, params, headers) -> None:
        if method == "ping":
            await self._reply(send, ex, {"jsonrpc": "2.0", "id": request_id, "result": {}})
            return
        if method == "server/discover":
            await self._discover(send, ex, request_id)
            return
        if method not in FORWARDED_METHODS:
            await self._reply(
                send,
                ex,
                rpc_error(request_id, METHOD_NOT_FOUND, f"Method not found: {method}"),
                status=404 if ex.era == "modern" else 200,
            )
            return

        params = params or {}
        name_key = NAMED.get(method)
        name = params.get(name_key) if name_key else None
        if name is not None and not isinstance(name, str):
            await self._reply(
                send, ex, rpc_error(request_id, INVALID_PARAMS, f"{name_key} must be a string"), status=400
            )
            return
        ex.item_name = (name or "")[:500]
        arguments = params.get("arguments") if method == "tools/call" else None
        if method == "tools/call" and arguments is not None and not isinstance(arguments, dict):
            await self._reply(
                send, ex, rpc_error(request_id, INVALID_PARAMS, "arguments must be an object"), status=400
            )
            return

        rules = await acurrent_rules()
        actions = rules.guard_actions(ex.connector_id)
        decision = await self._decide(ex, name, arguments)
        if decision.allowed and method == "tools/call" and arguments:
            text, pre = scan_arguments(ex, arguments, actions)
            if text is not None:
                result = {"content": [{"type": "text", "text": text}], "isError": True}
                await self._reply(
                    send, ex, shape_result(ex, method, {"jsonrpc": "2.0", "id": request_id, "result": result})
                )
                return
            if pre.masked:
                arguments = pre.value
                params = {**params, "arguments": arguments}
        if not decision.allowed:
            details = {"reason": decision.reason, "rule": decision.rule}
            if method == "tools/call" and not ex.connector.is_sensitive:
                details["arguments"] = capped(arguments)
            audit(ex, ActionType.ACCESS_DENIED, details=details)
            if method == "tools/call":
                result = {
                    "content": [{"type": "text", "text": f"Blocked by Runlayer: {decision.reason}"}],
                    "isError": True,
                }
                await self._reply(
                    send, ex, shape_result(ex, method, {"jsonrpc": "2.0", "id": request_id, "result": result})
                )
            else:
                await self._reply(
                    send, ex, rpc_error(request_id, INVALID_REQUEST, f"Blocked by Runlayer: {decision.reason}")
                )
            return

        wants_progress = (
            isinstance(params.get("_meta"), dict)
            and "progressToken" in params["_meta"]
            and "text/event-stream" in headers.get("accept", "")
        )
        stream = EventStream(send) if wants_progress else None
        try:
            upstream = await self._upstream(ex)
            response = await upstream.request(method, params, notify=stream.notify if stream else None)
        except MissingSecret as exc:
            audit_call(ex, method, arguments, None, error=("missing_secret", str(exc)))
            await self._finish(send, ex, stream, rpc_error(request_id, INVALID_REQUEST, str(exc)))
            return
        except UpstreamError as exc:
            audit_call(ex, method, arguments, None, error=(exc.kind, str(exc)))
            await self._finish(send, ex, stream, rpc_error(request_id, UPSTREAM_ERROR, str(exc)))
            return

        response["id"] = request_id
        if "result" in response and isinstance(response["result"], dict):
            if method in LIST_FILTERS:
                response["result"] = await self._filter_list(ex, method, response["result"])
                if method == "tools/list":
                    response["result"] = await self._guard_tool_list(ex, response["result"], rules, actions)
            elif method in GUARDED_RESULTS:
                text, post = scan_result(ex, response["result"], actions, name)
                if text is not None:
                    if method == "tools/call":
                        blocked = {"content": [{"type": "text", "text": text}], "isError": True}
                        reply = {"jsonrpc": "2.0", "id": request_id, "result": blocked}
                        await self._finish(send, ex, stream, shape_result(ex, method, reply))
                    else:
                        await self._finish(send, ex, stream, rpc_error(request_id, INVALID_REQUEST, text))
                    return
                response["result"] = post.value
            response = shape_result(ex, method, response)
            error = None
            if method == "tools/call" and response.get("result", {}).get("isError"):
                error = ("tool_error", "the tool reported an error")
            audit_call(ex, method, arguments, response.get("result"), error=error)
        else:
            err = response.get("error") if isinstance(response.get("error"), dict) else {}
            message = str(err.get("message", "upstream error"))[:500]
            code = err.get("code") if isinstance(err.get("code"), int) else UPSTREAM_ERROR
            response = rpc_error(request_id, code, message)
            audit_call(ex, method, arguments, None, error=("rpc_error", message))
        await self._finish(send, ex, stream, response)

    async def _filter_list(self, ex: Exchange, method: str, result: dict[str, Any]) -> dict[str, Any]:
        """A list result with only the items the caller may use (by the policies of the item's method)."""
        key = LIST_FILTERS[method][0]
        items = result.get(key)
        if not isinstance(items, list):
            return result
        assert ex.identity is not None
        visible = visible_items(
            await acurrent_rules(),
            principal=ex.identity.principal,
            connector_id=ex.connector_id,
            list_method=method,
            items=items,
            client_name=ex.client_name,
            ip=ex.ip,
        )
        return {**result, key: visible}

    async def _guard_tool_list(self, ex: Exchange, result: dict[str, Any], rules, actions) -> dict[str, Any]:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return result
        kept = await guard_tool_list(
            rules, connector_id=ex.connector_id, tools=tools, definition_action=actions.get("definition", "block")
        )
        return result if kept is tools else {**result, "tools": kept}

    async def _open_connector(self, send, ex: Exchange, request_id: Any):
        """Connector-level access (``initialize``, ``server/discover``): the upstream's info, or None once refused."""
        decision = await self._decide(ex, None, None)
        if not decision.allowed:
            audit(ex, ActionType.ACCESS_DENIED, details={"reason": decision.reason, "rule": decision.rule})
            await self._reply(send, ex, rpc_error(request_id, INVALID_REQUEST, decision.reason), status=403)
            return None
        return await self._upstream_info(send, ex, request_id)

    async def _discover(self, send, ex: Exchange, request_id) -> None:
        info = await self._open_connector(send, ex, request_id)
        if info is None:
            return
        assert ex.connector is not None
        result = {
            "supportedVersions": list(MODERN_PROTOCOL_VERSIONS),
            "capabilities": advertised_capabilities(info.capabilities),
            "cacheScope": "private",
            "ttlMs": 0,
            "resultType": "complete",
            "_meta": {SERVER_INFO_META_KEY: {"name": ex.connector.slug, "version": str(ex.connector.version)}},
        }
        if info.instructions:
            result["instructions"] = info.instructions
        await self._reply(send, ex, {"jsonrpc": "2.0", "id": request_id, "result": result})

    # -- replies and audit -----------------------------------------------------------------------
    async def _finish(self, send, ex: Exchange, stream: EventStream | None, message: dict[str, Any]) -> None:
        if stream is not None and stream.started:
            await stream.close_with(message)
        else:
            await self._reply(send, ex, message)

    async def _reply(
        self, send, ex: Exchange, message: dict[str, Any], *, status: int = 200, session_id: str | None = None
    ) -> None:
        headers = {}
        if session_id:
            headers["mcp-session-id"] = session_id
        await send_json(send, status, message, headers)


gateway = Gateway()
