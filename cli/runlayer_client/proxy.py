"""``runlayer run``: a stdio MCP server for the AI client, in front of the real local MCP server.

The local MCP (a stdio command launched with an argument list, never a shell, or a loopback HTTP/SSE
server) is reached through the MCP SDK. Every governed request goes through the Runlayer server first
(``/pre``: policy, argument scanning) and its result after (``/post``: list filtering, result scanning,
masking, audit). When the server cannot be asked, nothing is forwarded: the CLI fails closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters, types
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server
from mcp.server.stdio import stdio_server
from mcp_types import CLIENT_INFO_META_KEY

from .api import AsyncApi
from .errors import CliError

logger = logging.getLogger("runlayer.run")

SDK_DEFAULT_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
ALLOWED_ENV = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "LANG", "LC_ALL", "TMPDIR",
)  # fmt: skip
START_TIMEOUT = 30.0
MAX_QUICK_RESTARTS = 3
CONNECTION_CLOSED = -32000
INTERNAL_ERROR = -32603
INVALID_REQUEST = -32600


def child_env(config: dict[str, Any], environ: dict[str, str], pass_env: list[str], warn) -> dict[str, str]:
    """The local MCP's environment: the SDK's default set, proxy/TLS/locale variables, the connector's
    ``env`` and ``inherit_env``, and the user's own values for the names the connector declares (or that
    ``--pass-env`` names). An empty value never replaces a real one; both cases are reported."""
    env = {name: environ[name] for name in (*SDK_DEFAULT_ENV, *ALLOWED_ENV) if name in environ}
    declared = config.get("env") if isinstance(config.get("env"), dict) else {}
    for name, value in declared.items():
        if isinstance(name, str) and isinstance(value, str):
            env[name] = value
    inherit = [n for n in config.get("inherit_env") or [] if isinstance(n, str)]
    for name in dict.fromkeys([*inherit, *declared, *pass_env]):
        if name.upper().startswith("RUNLAYER_"):
            warn(f"{name} is never passed to a local MCP server (Runlayer's own settings stay with the CLI)")
            env.pop(name, None)
            continue
        value = environ.get(name)
        if value is None:
            if env.get(name) == "":
                warn(f"{name} is empty: set it in this server's \"env\" in your AI client's MCP config")
            continue
        if value == "" and env.get(name):
            warn(f"ignoring the empty {name} from your environment: the connector's value is kept")
            continue
        if value == "":
            warn(f"{name} is empty")
        env[name] = value
    return env


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

    def __init__(self, details: dict[str, Any], env: dict[str, str], errlog: TextIO) -> None:
        self.details, self.env, self.errlog = details, env, errlog
        self.client: Client | None = None
        self.error = ""
        self._changed = anyio.Event()
        self._stop = anyio.Event()
        self._wanted = anyio.Event()
        self._wanted.set()
        self.restarts = 0

    def _transport(self):
        transport = self.details["transport_type"]
        config = self.details.get("transport_config") or {}
        if transport == "stdio":
            args = [str(a) for a in config.get("args") or []]
            params = StdioServerParameters(command=self.details["url"], args=args, env=self.env)
            return stdio_client(params, errlog=self.errlog), None
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
            transport, http = self._transport()
            try:
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
        return await self.api.call("POST", f"{self.base}/pre", json={"method": method, "params": params})

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
        return await self.api.call("POST", f"{self.base}/post", json=body)

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
        try:
            result, error = await self._child(request, result_type)
        except MCPError as exc:
            await self._post_quietly(method, wire, pre["correlation_id"], started, exc)
            raise
        result_wire = _wire(result) if result is not None else None
        try:
            post = await self._post(method, wire or None, result_wire, pre["correlation_id"], started, error)
        except CliError as exc:
            raise MCPError(INTERNAL_ERROR, f"Runlayer could not check the list: {exc.message}") from None
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
        try:
            result, error = await self._child(request, result_type)
        except MCPError as exc:
            await self._post_quietly(method, wire, pre["correlation_id"], started, exc)
            raise
        result_wire = _wire(result) if result is not None else None
        try:
            post = await self._post(method, wire, result_wire, pre["correlation_id"], started, error)
        except CliError as exc:
            raise MCPError(INTERNAL_ERROR, f"Runlayer could not check the result: {exc.message}") from None
        if error is not None:
            raise MCPError(INTERNAL_ERROR, error["message"])
        modified = post.get("modified_output") if isinstance(post, dict) else None
        if isinstance(modified, dict):
            if modified.get("isError"):
                raise MCPError(INVALID_REQUEST, _text_of(modified.get("content") or []))
            return result_type.model_validate(modified)
        return result

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


async def upload_capabilities(api: AsyncApi, server_id: str, details: dict[str, Any], upstream: Upstream) -> None:
    """Send what the local MCP offers when the server asks (``sync_required``); on 409 re-read and retry once
    if the configuration it describes is still the one running."""
    from .sync import collect_capabilities, same_source

    try:
        client = await upstream.get()
        body = await collect_capabilities(client)
    except Exception as exc:
        logger.warning("capability sync skipped: %s", exc)
        return
    version = details.get("version")
    for _ in range(2):
        response = await api.request(
            "POST", f"/api/v1/local/{server_id}/capabilities", params={"server_version": version}, json=body
        )
        if response.status_code != 409:
            logger.info("capabilities uploaded: %s", response.status_code)
            return
        current = await api.call("GET", f"/api/v1/local/{server_id}")
        if not same_source(details, current):
            logger.info("capability sync skipped: the connector's configuration changed; restart to pick it up")
            return
        version = current.get("version")


async def serve(api: AsyncApi, server_id: str, details: dict[str, Any], env: dict[str, str], errlog: TextIO) -> None:
    upstream = Upstream(details, env, errlog)
    async with anyio.create_task_group() as tg:
        tg.start_soon(upstream.supervise)
        tg.start_soon(_stop_on_signals, tg.cancel_scope)
        capabilities = None
        with contextlib.suppress(Unavailable):
            capabilities = (await upstream.get()).server_capabilities
        if details.get("sync_required"):
            tg.start_soon(upload_capabilities, api, server_id, details, upstream)
        server = build_server(Governed(api, server_id, upstream), details.get("name", "runlayer"), capabilities)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        tg.cancel_scope.cancel()  # the AI client closed stdin: stop the local MCP (stdin close, SIGTERM, SIGKILL)


async def _stop_on_signals(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for _ in signals:
            scope.cancel()
            return


def log_file_for(server_id: str) -> str:
    from .config import config_dir

    directory = config_dir() / "logs"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(directory / f"run-{server_id}.log")


def configure_logging(path: str) -> TextIO:
    handle = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(
        stream=handle,
        level=os.environ.get("RUNLAYER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
    )
    return handle
