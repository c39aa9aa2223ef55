"""``runlayer run``: a stdio MCP server for the AI client, in front of the real local MCP server.

The local MCP (a stdio command launched with an argument list, never a shell, or a loopback HTTP/SSE
server) is reached through the MCP SDK. Every governed request goes through the Runlayer server first
(``/pre``: policy, argument scanning) and its result after (``/post``: list filtering, result scanning,
masking, audit). When the server cannot be asked, nothing is forwarded: the CLI fails closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import anyio
import httpx2
from mcp import Client, MCPError, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp_types import CLIENT_INFO_META_KEY

from .api import AsyncApi
from .child import ChildProcess, sdk_transport
from .errors import CliError
from .relay import Relay
from .stdio import ClientPipe, sdk_server_streams
from .sync import collect_capabilities, upload

logger = logging.getLogger("runlayer.run")

START_TIMEOUT = 30.0
MAX_QUICK_RESTARTS = 3
CONNECTION_CLOSED = -32000
INTERNAL_ERROR = -32603
INVALID_REQUEST = -32600


def _wire(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def _params_for_child(params: Any) -> dict[str, Any]:
    """The request's params without ``_meta`` (protocol and progress fields belong to each hop)."""
    data = _wire(params) if params is not None else {}
    data.pop("_meta", None)
    return data


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Unavailable(Exception):
    """The local MCP server is not running (did not start, crashed, or its URL does not answer)."""


class Upstream:
    """Owns the connection to the local MCP in one task (the SDK's sessions are task-affine) and
    reconnects, or restarts the child, when a request finds it gone."""

    def __init__(
        self, details: dict[str, Any], env: dict[str, str], errlog: TextIO, child: ChildProcess | None = None
    ) -> None:
        self.details, self.env, self.errlog = details, env, errlog
        self.first_child = child
        self.client: Client | None = None
        self.error = ""
        self._changed = anyio.Event()
        self._stop = anyio.Event()
        self._wanted = anyio.Event()
        self._wanted.set()
        self.restarts = 0

    async def _transport(self):
        transport = self.details["transport_type"]
        config = self.details.get("transport_config") or {}
        if transport == "stdio":
            child, self.first_child = self.first_child, None
            if child is None or not child.alive:
                child = await spawn_child(self.details, self.env, self.errlog)
            return sdk_transport(child), None
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        if transport == "sse":
            return sse_client(self.details["url"], headers=headers), None
        http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
        return streamable_http_client(self.details["url"], http_client=http), http

    def _announce(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def supervise(self) -> None:
        while True:
            await self._wanted.wait()
            self._stop = anyio.Event()
            http = None
            try:
                transport, http = await self._transport()
                async with Client(transport, mode="legacy", cache=None) as client:
                    self.client, self.error = client, ""
                    self._announce()
                    await self._stop.wait()
            except Exception as exc:
                failure = _first_error(exc)
                self.error = f"{type(failure).__name__}: {str(failure)[:300]}"
                logger.warning("local MCP server failed: %s", self.error)
            finally:
                self.client = None
                if http is not None:
                    await http.aclose()
            self.restarts += 1
            if self.restarts > MAX_QUICK_RESTARTS:
                self._wanted = anyio.Event()  # wait until a request asks for it again
            else:
                await anyio.sleep(0.2)
            self.error = self.error or "the local MCP server stopped"
            self._announce()

    async def get(self, timeout: float = START_TIMEOUT) -> Client:
        if self.client is not None:
            return self.client
        self._wanted.set()
        with anyio.move_on_after(timeout):
            while self.client is None:
                changed = self._changed
                await changed.wait()
                if self.client is None and self.error and not self._wanted.is_set():
                    break
        if self.client is None:
            name = self.details.get("name", "the local MCP server")
            raise Unavailable(f"{name} is not running ({self.error or 'it did not start in time'})")
        return self.client

    def lost(self) -> None:
        """A request found the connection dead: drop it so the next request starts a new one."""
        self.restarts = 0
        self._wanted.set()
        self._stop.set()


def _is_connection_loss(exc: BaseException) -> bool:
    exc = _first_error(exc)
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError))


class Governed:
    """The MCP handlers the AI client talks to: each asks the server, then the local MCP, then the server."""

    def __init__(self, api: AsyncApi, server_id: str, upstream: Upstream) -> None:
        self.api, self.server_id, self.upstream = api, server_id, upstream
        self.base = f"/api/v1/local/{server_id}"
        self._label = ""

    def _note_client(self, ctx) -> None:
        if self._label:
            return
        info: Any = None
        with contextlib.suppress(Exception):
            params = ctx.session.client_params
            info = params.client_info if params is not None else None
        if info is not None:
            label = f"{info.name}/{info.version}"
        else:
            meta = ctx.meta or {}
            raw = meta.get(CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
            label = f"{raw.get('name', '')}/{raw.get('version', '')}" if isinstance(raw, dict) else ""
        if label.strip("/"):
            self._label = label
            self.api.set_client_label(label)

    async def _pre(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return await self.api.post_json(f"{self.base}/pre", {"method": method, "params": params})

    async def _post(self, method: str, params, result, correlation_id: str, started: float, error=None) -> Any:
        body = {
            "method": method,
            "params": params,
            "result": result,
            "correlation_id": correlation_id,
            "inject_synthetic_tool_on_policy_block": method == "tools/list",
            "upstream_error": error,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        return await self.api.post_json(f"{self.base}/post", body)

    async def _child(self, request: Any, result_type: type, ctx=None) -> tuple[Any, dict[str, str] | None]:
        """(result, None) or (None, upstream_error); JSON-RPC errors of the child are raised as they are."""
        progress = None
        if ctx is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                with contextlib.suppress(Exception):
                    await ctx.session.report_progress(value, total, message)

        try:
            client = await self.upstream.get()
            return await client.session.send_request(request, result_type, progress_callback=progress), None
        except Unavailable as exc:
            return None, {"type": "Unavailable", "message": str(exc)}
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            if _is_connection_loss(exc):
                self.upstream.lost()
                first = _first_error(exc)
                return None, {"type": type(first).__name__, "message": f"the local MCP server stopped ({first})"}
            raise _first_error(exc) from None

    # -- tools -----------------------------------------------------------------------------------
    async def call_tool(self, ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        self._note_client(ctx)
        started = time.perf_counter()
        wire = _params_for_child(params)
        try:
            pre = await self._pre("tools/call", wire)
        except CliError as exc:
            return _error_result(f"Runlayer could not check this call, so it was not made: {exc.message}")
        if pre.get("quick_tool_result"):
            return types.CallToolResult(content=pre["quick_tool_result"], is_error=True)
        if isinstance(pre.get("modified_args"), dict):
            wire["arguments"] = pre["modified_args"]
        request = types.CallToolRequest(params=types.CallToolRequestParams.model_validate(wire))
        try:
            result, error = await self._child(request, types.CallToolResult, ctx)
        except MCPError as exc:
            await self._post_quietly("tools/call", wire, pre["correlation_id"], started, exc)
            raise
        result_wire = _wire(result) if result is not None else None
        try:
            post = await self._post("tools/call", wire, result_wire, pre["correlation_id"], started, error)
        except CliError as exc:
            return _error_result(f"Runlayer could not check the result, so it is withheld: {exc.message}")
        if error is not None:
            return _error_result(error["message"])
        modified = post.get("modified_output") if isinstance(post, dict) else None
        if isinstance(modified, dict):
            return types.CallToolResult.model_validate(modified)
        return result

    async def list_tools(self, ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        data = await self._list(ctx, "tools/list", types.ListToolsRequest, types.ListToolsResult, params)
        return types.ListToolsResult.model_validate(data)

    # -- resources and prompts -------------------------------------------------------------------
    async def list_resources(self, ctx, params) -> types.ListResourcesResult:
        data = await self._list(ctx, "resources/list", types.ListResourcesRequest, types.ListResourcesResult, params)
        return types.ListResourcesResult.model_validate(data)

    async def list_resource_templates(self, ctx, params) -> types.ListResourceTemplatesResult:
        request = types.ListResourceTemplatesRequest(params=params)
        result, error = await self._child(request, types.ListResourceTemplatesResult)
        if error is not None:
            raise MCPError(INTERNAL_ERROR, error["message"])
        return result

    async def list_prompts(self, ctx, params) -> types.ListPromptsResult:
        data = await self._list(ctx, "prompts/list", types.ListPromptsRequest, types.ListPromptsResult, params)
        return types.ListPromptsResult.model_validate(data)

    async def read_resource(self, ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await self._named(ctx, "resources/read", params, types.ReadResourceRequest, types.ReadResourceResult)

    async def get_prompt(self, ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await self._named(ctx, "prompts/get", params, types.GetPromptRequest, types.GetPromptResult)

    # -- shared ----------------------------------------------------------------------------------
    async def _list(self, ctx, method: str, request_type, result_type, params) -> dict[str, Any]:
        self._note_client(ctx)
        started = time.perf_counter()
        wire = _params_for_child(params)
        try:
            pre = await self._pre(method, wire or None)
        except CliError as exc:
            raise MCPError(INTERNAL_ERROR, f"Runlayer could not be asked, nothing is listed: {exc.message}") from None
        request = request_type(params=types.PaginatedRequestParams.model_validate(wire) if wire else None)
        _, result_wire, _, post = await self._child_then_post(method, wire, request, result_type, pre, started)
        modified = post.get("modified_output") if isinstance(post, dict) else post
        if isinstance(modified, list):  # a server answering in the published CLI's shape
            modified = {"tools": modified}
        if not isinstance(modified, dict):
            raise MCPError(INTERNAL_ERROR, "Runlayer answered the list check in an unexpected shape")
        if result_wire and result_wire.get("nextCursor") and "nextCursor" not in modified:
            modified["nextCursor"] = result_wire["nextCursor"]
        return modified

    async def _named(self, ctx, method: str, params, request_type, result_type):
        self._note_client(ctx)
        started = time.perf_counter()
        wire = _params_for_child(params)
        try:
            pre = await self._pre(method, wire)
        except CliError as exc:
            raise MCPError(INTERNAL_ERROR, f"Runlayer could not check this request: {exc.message}") from None
        if pre.get("quick_tool_result"):
            raise MCPError(INVALID_REQUEST, _text_of(pre["quick_tool_result"]))
        request = request_type(params=type(params).model_validate(wire))
        result, _, error, post = await self._child_then_post(method, wire, request, result_type, pre, started)
        if error is not None:
            raise MCPError(INTERNAL_ERROR, error["message"])
        modified = post.get("modified_output") if isinstance(post, dict) else None
        if isinstance(modified, dict):
            if modified.get("isError"):
                raise MCPError(INVALID_REQUEST, _text_of(modified.get("content") or []))
            return result_type.model_validate(modified)
        return result

    async def _child_then_post(self, method: str, wire, request, result_type, pre, started: float):
        """The local server's answer and the server's verdict on it: (result, its wire form, error, post)."""
        try:
            result, error = await self._child(request, result_type)
        except MCPError as exc:
            await self._post_quietly(method, wire, pre["correlation_id"], started, exc)
            raise
        result_wire = _wire(result) if result is not None else None
        try:
            post = await self._post(method, wire or None, result_wire, pre["correlation_id"], started, error)
        except CliError as exc:
            raise MCPError(INTERNAL_ERROR, f"Runlayer could not check the result: {exc.message}") from None
        return result, result_wire, error, post

    async def _post_quietly(self, method: str, params, correlation_id: str, started: float, exc: MCPError) -> None:
        error = {"type": "MCPError", "message": f"{exc.code}: {exc.message}"[:500]}
        with contextlib.suppress(CliError):
            await self._post(method, params, None, correlation_id, started, error)


def _error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _text_of(blocks: list[Any]) -> str:
    texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    return " ".join(t for t in texts if t) or "Blocked by Runlayer"


def build_server(governed: Governed, name: str, capabilities: types.ServerCapabilities | None) -> Server:
    """Handlers only for what the local MCP offers (all of them when it has not started yet)."""
    handlers: dict[str, Callable[..., Awaitable[Any]]] = {}
    if capabilities is None or capabilities.tools is not None:
        handlers.update(on_list_tools=governed.list_tools, on_call_tool=governed.call_tool)
    if capabilities is None or capabilities.resources is not None:
        handlers.update(
            on_list_resources=governed.list_resources,
            on_list_resource_templates=governed.list_resource_templates,
            on_read_resource=governed.read_resource,
        )
    if capabilities is None or capabilities.prompts is not None:
        handlers.update(on_list_prompts=governed.list_prompts, on_get_prompt=governed.get_prompt)
    return Server(name, version="runlayer", **handlers)


async def spawn_child(details: dict[str, Any], env: dict[str, str], errlog: TextIO) -> ChildProcess:
    config = details.get("transport_config") or {}
    return await ChildProcess.spawn(details["url"], [str(a) for a in config.get("args") or []], env, errlog)


async def serve(
    api: AsyncApi,
    server_id: str,
    details: dict[str, Any],
    env: dict[str, str],
    errlog: TextIO,
    child: ChildProcess | None = None,
) -> None:
    """Serve the AI client until it closes stdin (or a signal arrives), then stop the local MCP.

    A handshake-era client of a stdio server gets the relay (bytes through, governed requests checked);
    a 2026-era client, or a local HTTP/SSE server, gets the MCP SDK on both sides, which bridges the eras.
    """
    pipe = ClientPipe()
    await pipe.open()
    first = await pipe.readline()
    if first is None:
        if child is not None:
            await child.stop()
        return
    try:
        opening = json.loads(first)
    except ValueError:
        opening = None
    handshake = isinstance(opening, dict) and opening.get("method") == "initialize"
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signals, tg.cancel_scope)
        if details.get("transport_type") == "stdio" and handshake:
            relay = Relay(
                api=api,
                server_id=server_id,
                details=details,
                client=pipe,
                child=child,
                spawn=lambda: spawn_child(details, env, errlog),
            )
            if details.get("sync_required"):
                relay.on_ready = lambda: tg.start_soon(upload, api, server_id, details, relay.collect_capabilities)
            try:
                await relay.run(first)
            finally:
                if relay.child is not None:
                    await relay.child.stop()
        else:
            await _serve_with_sdk(tg, pipe, first, api, server_id, details, env, errlog, child)
        tg.cancel_scope.cancel()


async def _serve_with_sdk(tg, pipe, first, api, server_id, details, env, errlog, child) -> None:
    upstream = Upstream(details, env, errlog, child)
    tg.start_soon(upstream.supervise)
    capabilities = None
    with contextlib.suppress(Unavailable):
        capabilities = (await upstream.get()).server_capabilities
    if details.get("sync_required"):

        async def collect() -> dict[str, Any]:
            return await collect_capabilities(await upstream.get())

        tg.start_soon(upload, api, server_id, details, collect)
    server = build_server(Governed(api, server_id, upstream), details.get("name", "runlayer"), capabilities)

    async def run(read_stream, write_stream) -> None:
        await server.run(read_stream, write_stream, server.create_initialization_options())

    await sdk_server_streams(pipe, first, run)


async def _stop_on_signals(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for _ in signals:
            scope.cancel()
            return
