"""The fast path of ``runlayer run``: a JSON-RPC relay between the AI client and a stdio MCP server.

Used when both speak the handshake era (the client opens with ``initialize``), which is every AI client
today. Messages pass through as bytes; only the governed requests are parsed and held: ``tools/call``,
``resources/read`` and ``prompts/get`` ask the server first (``/pre``), and their results, like those of
``tools/list``, ``resources/list`` and ``prompts/list``, are checked after (``/post``). Everything else
(notifications, progress, cancellations, the server's own requests to the client) is relayed untouched.

If the child dies it is started again on the next request, and the client's ``initialize`` is replayed to it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .child import ChildProcess
from .errors import CliError

logger = logging.getLogger("runlayer.relay")

NAMED = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}
LISTS = {"tools/list": "tools", "resources/list": "resources", "prompts/list": "prompts"}
INVALID_REQUEST, INTERNAL_ERROR = -32600, -32603
MAX_QUICK_RESTARTS = 3


def _dump(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _key(request_id: Any) -> str:
    return json.dumps(request_id)


class Relay:
    def __init__(
        self,
        *,
        api,
        server_id: str,
        details: dict[str, Any],
        client,
        child: ChildProcess | None,
        spawn: Callable[[], Awaitable[ChildProcess]],
    ) -> None:
        self.api, self.server_id, self.details = api, server_id, details
        self.base = f"/api/v1/local/{server_id}"
        self.client = client  # ClientPipe
        self.child = child
        self.spawn = spawn
        self.pending: dict[str, tuple[str, dict[str, Any], str, float]] = {}
        self.own: dict[str, Any] = {}  # our own requests to the child: id → [event, response]
        self.own_ids = 0
        self.own_prefix = f"runlayer-{os.urandom(4).hex()}-"
        self.initialize: dict[str, Any] | None = None
        self.child_capabilities: dict[str, Any] = {}
        self.init_answered = False
        self.on_ready: Callable[[], None] | None = None  # called once the client's session is initialized
        self.restart_lock = anyio.Lock()
        self.failures = 0
        self.last_error = ""
        self.tg: anyio.abc.TaskGroup | None = None

    # -- main loop ---------------------------------------------------------------------------------
    async def run(self, first_line: bytes) -> None:
        async with anyio.create_task_group() as tg:
            self.tg = tg
            if self.child is not None:
                tg.start_soon(self._read_child, self.child)
            line: bytes | None = first_line
            while line is not None:
                await self._from_client(line)
                line = await self.client.readline()
            tg.cancel_scope.cancel()
        if self.child is not None:
            await self.child.stop()

    async def _from_client(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("method"), str) or "id" not in message:
            await self._to_child(line)  # responses, notifications, anything we do not govern
            if isinstance(message, dict) and message.get("method") == "notifications/initialized" and self.on_ready:
                ready, self.on_ready = self.on_ready, None
                ready()
            return
        method = message["method"]
        if method == "initialize":
            await self._initialize(message, line)
        elif method in NAMED or method in LISTS:
            assert self.tg is not None
            self.tg.start_soon(self._governed, message)
        else:
            await self._to_child(line)

    # -- the child -----------------------------------------------------------------------------------
    async def _read_child(self, child: ChildProcess) -> None:
        async for line in child.lines():
            try:
                message = json.loads(line)
            except ValueError:
                logger.warning("the local MCP server wrote a line that is not JSON; dropped")
                continue
            request_id = message.get("id") if isinstance(message, dict) else None
            if request_id is not None and "method" not in message:
                key = _key(request_id)
                if key in self.own:
                    self.own[key][1] = message
                    self.own[key][0].set()
                    continue
                if self.initialize is not None and request_id == self.initialize.get("id") and not self.init_answered:
                    self.init_answered = True
                    result = message.get("result") if isinstance(message.get("result"), dict) else {}
                    caps = result.get("capabilities")
                    self.child_capabilities = caps if isinstance(caps, dict) else {}
                held = self.pending.pop(key, None)
                if held is not None:
                    assert self.tg is not None
                    self.tg.start_soon(self._answer, message, held)
                    continue
            self.client.write(line + b"\n")
        await self._child_gone(child)

    async def _child_gone(self, child: ChildProcess) -> None:
        if self.child is not child:
            return
        self.child = None
        await child.stop()
        code = child.process.returncode
        self.last_error = "the local MCP server stopped" + (f" (exit code {code})" if code is not None else "")
        logger.warning("%s", self.last_error)
        if self.initialize is not None and not self.init_answered:
            self._answer_initialize(self.initialize)
        for key, held in list(self.pending.items()):
            self.pending.pop(key, None)
            request_id = json.loads(key)
            error = {"type": "ChildExited", "message": self.last_error}
            assert self.tg is not None
            self.tg.start_soon(self._answer, {"jsonrpc": "2.0", "id": request_id}, held, error)
        for waiter in self.own.values():
            waiter[0].set()

    async def _to_child(self, data: bytes) -> bool:
        child = self.child
        if child is None:
            return False
        try:
            await child.send(data if data.endswith(b"\n") else data + b"\n")
            return True
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self._child_gone(child)
            return False

    async def _ensure_child(self) -> bool:
        """A running child that has seen the client's initialize; starts one again after a crash."""
        if self.child is not None:
            return True
        async with self.restart_lock:
            if self.child is not None:
                return True
            if self.failures > MAX_QUICK_RESTARTS:
                self.failures = 0  # try once per request from now on
            try:
                child = await self.spawn()
            except OSError as exc:
                self.failures += 1
                self.last_error = f"the local MCP server could not be started: {exc}"
                return False
            self.child = child
            assert self.tg is not None
            self.tg.start_soon(self._read_child, child)
            if self.initialize is not None:
                reply = await self._own_request("initialize", self.initialize.get("params") or {}, timeout=30)
                if reply is None or "result" not in reply:
                    self.failures += 1
                    return False
                await self._to_child(_dump({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            self.failures = 0
            return True

    async def _own_request(self, method: str, params: dict[str, Any], timeout: float = 60) -> dict[str, Any] | None:
        self.own_ids += 1
        request_id = f"{self.own_prefix}{self.own_ids}"
        waiter: list[Any] = [anyio.Event(), None]
        self.own[_key(request_id)] = waiter
        try:
            if not await self._to_child(
                _dump({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            ):
                return None
            with anyio.move_on_after(timeout):
                await waiter[0].wait()
            return waiter[1]
        finally:
            self.own.pop(_key(request_id), None)

    # -- initialize ----------------------------------------------------------------------------------
    async def _initialize(self, message: dict[str, Any], line: bytes) -> None:
        self.initialize = message
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        info = params.get("clientInfo") if isinstance(params.get("clientInfo"), dict) else {}
        label = f"{info.get('name', '')}/{info.get('version', '')}"
        if label != "/":
            self.api.set_client_label(label)
        if self.child is not None and await self._to_child(line):
            return  # the child answers; its answer is relayed as it is
        if not self.init_answered:
            self._answer_initialize(message)

    def _answer_initialize(self, message: dict[str, Any]) -> None:
        """No local server: answer ourselves, so the client can still list (and learn why it has no tools)."""
        self.init_answered = True
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        version = params.get("protocolVersion") if isinstance(params.get("protocolVersion"), str) else "2025-06-18"
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": self.details.get("name", "runlayer"), "version": "unavailable"},
        }
        self.client.write(_dump({"jsonrpc": "2.0", "id": message["id"], "result": result}))

    # -- governed requests ---------------------------------------------------------------------------
    async def _governed(self, message: dict[str, Any]) -> None:
        method, request_id = message["method"], message["id"]
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        audit_params = {k: v for k, v in params.items() if k != "_meta"}
        started = time.perf_counter()
        try:
            pre = await self.api.post_json(f"{self.base}/pre", {"method": method, "params": audit_params or None})
        except CliError as exc:
            self._refuse(
                method, request_id, f"Runlayer could not check this request, so it was not made: {exc.message}"
            )
            return
        quick = pre.get("quick_tool_result")
        if quick:
            if method == "tools/call":
                self._reply(request_id, {"content": quick, "isError": True})
            else:
                self._error(request_id, INVALID_REQUEST, _text_of(quick))
            return
        modified_args = pre.get("modified_args")
        if isinstance(modified_args, dict):
            params = {**params, "arguments": modified_args}
            audit_params = {**audit_params, "arguments": modified_args}
            message = {**message, "params": params}
        held = (method, audit_params, pre["correlation_id"], started)
        if not await self._ensure_child():
            error = {"type": "Unavailable", "message": self.last_error or "the local MCP server is not running"}
            await self._answer({"jsonrpc": "2.0", "id": request_id}, held, error)
            return
        self.pending[_key(request_id)] = held
        if not await self._to_child(_dump(message)) and _key(request_id) in self.pending:
            self.pending.pop(_key(request_id), None)
            await self._answer(
                {"jsonrpc": "2.0", "id": request_id}, held, {"type": "Unavailable", "message": self.last_error}
            )

    async def _answer(self, response: dict[str, Any], held, error: dict[str, str] | None = None) -> None:
        """The child's answer (or its absence) checked by the server, then given to the client."""
        method, params, correlation_id, started = held
        request_id = response.get("id")
        result = response.get("result") if isinstance(response.get("result"), dict) else None
        if error is None and "error" in response:
            err = response["error"] if isinstance(response["error"], dict) else {}
            error = {"type": "rpc_error", "message": f"{err.get('code')}: {err.get('message', '')}"[:500]}
        body = {
            "method": method,
            "params": params or None,
            "result": result,
            "correlation_id": correlation_id,
            "inject_synthetic_tool_on_policy_block": method == "tools/list",
            "upstream_error": error,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        try:
            post = await self.api.post_json(f"{self.base}/post", body)
        except CliError as exc:
            self._refuse(method, request_id, f"Runlayer could not check the result, so it is withheld: {exc.message}")
            return
        modified = post.get("modified_output") if isinstance(post, dict) else {"tools": post}
        if method in LISTS:
            if isinstance(modified, dict):
                self._reply(request_id, {**(result or {}), **modified})
            elif "error" in response:
                self.client.write(_dump(response))
            else:
                self._error(request_id, INTERNAL_ERROR, "Runlayer answered the list check in an unexpected shape")
            return
        if error is not None and "error" in response:
            self.client.write(_dump(response))  # the child's own JSON-RPC error, as it sent it
            return
        if error is not None:
            if method == "tools/call":
                self._reply(request_id, {"content": [{"type": "text", "text": error["message"]}], "isError": True})
            else:
                self._error(request_id, INTERNAL_ERROR, error["message"])
            return
        if isinstance(modified, dict):
            if method != "tools/call" and modified.get("isError"):
                self._error(request_id, INVALID_REQUEST, _text_of(modified.get("content") or []))
            else:
                self._reply(request_id, modified)
            return
        self._reply(request_id, result or {})

    def _refuse(self, method: str, request_id: Any, text: str) -> None:
        if method == "tools/call":
            self._reply(request_id, {"content": [{"type": "text", "text": text}], "isError": True})
        else:
            self._error(request_id, INTERNAL_ERROR, text)

    def _reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.client.write(_dump({"jsonrpc": "2.0", "id": request_id, "result": result}))

    def _error(self, request_id: Any, code: int, text: str) -> None:
        self.client.write(_dump({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": text}}))

    # -- capability upload ---------------------------------------------------------------------------
    async def collect_capabilities(self) -> dict[str, Any]:
        from datetime import UTC, datetime

        async def pages(method: str, key: str, name_key: str) -> dict[str, Any]:
            items: dict[str, Any] = {}
            cursor = None
            for _ in range(50):
                reply = await self._own_request(method, {"cursor": cursor} if cursor else {})
                result = (reply or {}).get("result") or {}
                for item in result.get(key) or []:
                    if isinstance(item, dict) and isinstance(item.get(name_key), str):
                        items[item[name_key]] = item
                cursor = result.get("nextCursor")
                if not cursor:
                    break
            return items

        caps = self.child_capabilities
        body: dict[str, Any] = {"tools": {}, "resources": {}, "resource_templates": {}, "prompts": {}}
        if "tools" in caps:
            body["tools"] = await pages("tools/list", "tools", "name")
        if "resources" in caps:
            body["resources"] = await pages("resources/list", "resources", "uri")
            body["resource_templates"] = await pages("resources/templates/list", "resourceTemplates", "uriTemplate")
        if "prompts" in caps:
            body["prompts"] = await pages("prompts/list", "prompts", "name")
        body["synced_at"] = datetime.now(UTC).isoformat()
        return body


def _text_of(blocks: list[Any]) -> str:
    texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    return " ".join(t for t in texts if t) or "Blocked by Runlayer"
