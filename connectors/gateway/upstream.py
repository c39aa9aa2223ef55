"""Long-lived connections to upstream MCP servers, spoken at the JSON-RPC level.

The gateway does not run an SDK client per upstream: it keeps one pooled HTTP client per upstream and
posts JSON-RPC messages itself, which costs a fraction of a millisecond instead of several. Each
``Upstream`` knows its server's protocol era, found once by probing ``server/discover`` (2026-07-28) and
falling back to the ``initialize`` handshake, and keeps the handshake-era session id. A stale session
(the upstream restarted: ``404``) is re-opened and the request sent again, which is safe because the
upstream never processed it. Anything else that fails is never retried: a ``tools/call`` may not be
idempotent.

Guards: a circuit breaker and a concurrency limit per upstream, connect/read timeouts, and a cap on the
size of what an upstream may send back. Failures surface as ``UpstreamError`` with a ``kind`` for the
audit trail and a message safe to show to a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlparse, urlsplit

import httpx2
from mcp.shared.inbound import NAME_BEARING_METHODS, encode_header_value
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from .breaker import CircuitBreaker
from .http1 import ConnectionPool, Response

logger = logging.getLogger(__name__)

CLIENT_INFO = {"name": "runlayer-gateway", "version": "1.0"}
ENVELOPE_KEYS = (PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY)
Notify = Callable[[dict[str, Any]], Awaitable[None]]


class UpstreamError(Exception):
    """An upstream failed. ``kind`` is for the audit trail; the message is safe to show to a client."""

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None) -> None:
        self.kind = kind
        self.retry_after = retry_after
        super().__init__(message)


class SessionExpired(Exception):
    pass


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    connector_id: str
    name: str
    transport: str  # "streaming-http" | "sse"
    url: str
    headers: tuple[tuple[str, str], ...]
    version: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(repr(self.headers).encode()).hexdigest()[:16]
        return f"{self.connector_id}:{self.version}:{digest}"


@dataclass
class Limits:
    connect_timeout: float = 5.0
    call_timeout: float = 60.0
    max_response_bytes: int = 10 * 1024 * 1024
    max_concurrency: int = 64
    queue_timeout: float = 10.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 10.0


@dataclass
class ServerInfo:
    """What the upstream told us about itself, in a shape independent of its era."""

    era: str  # "legacy" | "modern"
    protocol_version: str
    capabilities: dict[str, Any]
    server_info: dict[str, Any]
    instructions: str | None = None


def _strip_envelope(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Params without the 2026-07-28 per-request envelope (the gateway adds its own where needed)."""
    if not params or "_meta" not in params or not isinstance(params["_meta"], dict):
        return params
    meta = {k: v for k, v in params["_meta"].items() if k not in ENVELOPE_KEYS}
    out = dict(params)
    if meta:
        out["_meta"] = meta
    else:
        del out["_meta"]
    return out


@dataclass
class Upstream:
    """One upstream server (one connector configuration and one set of resolved headers)."""

    spec: UpstreamSpec
    limits: Limits
    client: httpx2.AsyncClient
    info: ServerInfo | None = None
    session_id: str | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    last_used: float = field(default_factory=time.monotonic)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _ready_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _slots: asyncio.Semaphore | None = None
    _pool: ConnectionPool | None = None
    _path: str = "/"
    # legacy HTTP+SSE transport
    _sse_task: asyncio.Task | None = None
    _sse_endpoint: str | None = None
    _sse_waiters: dict[int, asyncio.Future] = field(default_factory=dict)
    _sse_notify: dict[str | int, Notify] = field(default_factory=dict)
    _sse_ready: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.limits.max_concurrency)
        self.breaker = CircuitBreaker(threshold=self.limits.breaker_threshold, cooldown=self.limits.breaker_cooldown)

    # -- public ----------------------------------------------------------------------------------
    async def ready(self) -> ServerInfo:
        if self.info is None:
            async with self._ready_lock:
                if self.info is None:
                    await self._guarded(self._open)
        assert self.info is not None
        return self.info

    async def request(
        self, method: str, params: dict[str, Any] | None, *, notify: Notify | None = None
    ) -> dict[str, Any]:
        """Send one request; returns the JSON-RPC response message (with ``result`` or ``error``)."""
        await self.ready()
        params = _strip_envelope(params)

        async def attempt() -> dict[str, Any]:
            try:
                return await self._send(method, params, notify)
            except SessionExpired:
                # The upstream forgot our session (restart, idle expiry): it never saw this request.
                async with self._ready_lock:
                    self.info, self.session_id = None, None
                    await self._open()
                return await self._send(method, params, notify)

        return await self._guarded(attempt)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        with contextlib.suppress(UpstreamError, httpx2.HTTPError):
            await self._post(message, expect_response=False)

    async def close(self) -> None:
        if self._sse_task is not None:
            self._sse_task.cancel()
            with contextlib.suppress(BaseException):
                await self._sse_task
        if self._pool is not None:
            if self.session_id:
                with contextlib.suppress(Exception):
                    response = await asyncio.wait_for(
                        self._pool.request("DELETE", self._path, self._headers(None, None)), 2.0
                    )
                    await response.aclose()
            await self._pool.aclose()
        await self.client.aclose()

    def _http(self) -> ConnectionPool:
        if self._pool is None:
            self._pool = ConnectionPool(
                self.spec.url,
                max_connections=self.limits.max_concurrency + 4,
                connect_timeout=self.limits.connect_timeout,
            )
            parts = urlsplit(self.spec.url)
            self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self._pool

    # -- guards ----------------------------------------------------------------------------------
    async def _guarded(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        self.last_used = time.monotonic()
        if not self.breaker.allow():
            raise UpstreamError(
                "circuit_open",
                f"the MCP server {self.spec.name!r} is failing; calls are paused for a few seconds",
                retry_after=self.breaker.retry_after(),
            )
        assert self._slots is not None
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.limits.queue_timeout)
        except TimeoutError:
            self.breaker.probing = False
            raise UpstreamError("overloaded", f"the MCP server {self.spec.name!r} is busy; try again shortly") from None
        try:
            result = await asyncio.wait_for(fn(), timeout=self.limits.call_timeout)
        except TimeoutError:
            self.breaker.record_failure()
            raise UpstreamError(
                "timeout", f"the MCP server {self.spec.name!r} did not answer within {self.limits.call_timeout:g} s"
            ) from None
        except UpstreamError as exc:
            if exc.kind != "too_large":
                self.breaker.record_failure()
            raise
        except (httpx2.HTTPError, OSError) as exc:
            self.breaker.record_failure()
            raise UpstreamError("unreachable", f"the MCP server {self.spec.name!r} could not be reached") from exc
        finally:
            self._slots.release()
        self.breaker.record_success()
        return result

    # -- opening: era detection and handshake ---------------------------------------------------
    async def _open(self) -> None:
        if self.spec.transport == "sse":
            await self._open_sse()
            await self._initialize()
            return
        discover = await self._post(self._message("server/discover", {}, modern=True), modern=True)
        result = discover.get("result") if isinstance(discover, dict) else None
        versions = result.get("supportedVersions") if isinstance(result, dict) else None
        if isinstance(versions, list) and LATEST_MODERN_VERSION in versions:
            meta = result.get("_meta") or {}
            self.info = ServerInfo(
                era="modern",
                protocol_version=LATEST_MODERN_VERSION,
                capabilities=result.get("capabilities") or {},
                server_info=meta.get("io.modelcontextprotocol/serverInfo") or {},
                instructions=result.get("instructions"),
            )
            return
        await self._initialize()

    async def _initialize(self) -> None:
        self.session_id = None
        params = {"protocolVersion": LATEST_HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
        response = await self._post(self._message("initialize", params), initialize=True)
        result = response.get("result")
        if not isinstance(result, dict):
            raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} refused the MCP handshake")
        version = result.get("protocolVersion")
        self.info = ServerInfo(
            era="legacy",
            protocol_version=version if version in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION,
            capabilities=result.get("capabilities") or {},
            server_info=result.get("serverInfo") or {},
            instructions=result.get("instructions"),
        )
        await self.notify("notifications/initialized")

    # -- sending ---------------------------------------------------------------------------------
    def _message(self, method: str, params: dict[str, Any] | None, *, modern: bool = False) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if modern:
            params = dict(params or {})
            meta = dict(params.get("_meta") or {})
            meta[PROTOCOL_VERSION_META_KEY] = LATEST_MODERN_VERSION
            meta[CLIENT_CAPABILITIES_META_KEY] = {}
            meta[CLIENT_INFO_META_KEY] = CLIENT_INFO
            params["_meta"] = meta
        if params is not None:
            message["params"] = params
        return message

    async def _send(self, method: str, params: dict[str, Any] | None, notify: Notify | None) -> dict[str, Any]:
        assert self.info is not None
        modern = self.info.era == "modern"
        return await self._post(self._message(method, params, modern=modern), modern=modern, notify=notify)

    def _headers(self, message: dict[str, Any] | None, modern: bool | None) -> dict[str, str]:
        headers = dict(self.spec.headers)
        headers["accept"] = "application/json, text/event-stream"
        headers["content-type"] = "application/json"
        if modern:
            method = message.get("method") if message else None
            headers["mcp-protocol-version"] = LATEST_MODERN_VERSION
            if method:
                headers["mcp-method"] = method
                name_key = NAME_BEARING_METHODS.get(method)
                name = (message.get("params") or {}).get(name_key) if name_key else None
                if isinstance(name, str):
                    headers["mcp-name"] = encode_header_value(name)
        elif self.info is not None and self.info.era == "legacy":
            headers["mcp-protocol-version"] = self.info.protocol_version
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        return headers

    async def _post(
        self,
        message: dict[str, Any],
        *,
        modern: bool = False,
        initialize: bool = False,
        expect_response: bool = True,
        notify: Notify | None = None,
    ) -> dict[str, Any]:
        if self.spec.transport == "sse":
            return await self._post_sse(message, expect_response=expect_response, notify=notify)
        body = json.dumps(message, separators=(",", ":")).encode()
        response = await self._http().request("POST", self._path, self._headers(message, modern), body)
        try:
            if initialize:
                self.session_id = response.headers.get("mcp-session-id")
            if response.status_code in (400, 404) and self.session_id and not initialize and not modern:
                # 404 is the spec's "unknown session"; many servers answer 400 "No valid session ID" instead.
                # Either way the request was not processed, so re-opening and resending is safe.
                if response.status_code == 404:
                    raise SessionExpired()
                body = await self._read_capped(response)
                if b"session" in body.lower():
                    raise SessionExpired()
                return self._parse_json(body)
            if not expect_response:
                return {}
            content_type = response.headers.get("content-type", "")
            if response.status_code >= 400 and "json" not in content_type:
                raise UpstreamError(
                    "http_status", f"the MCP server {self.spec.name!r} answered HTTP {response.status_code}"
                )
            if content_type.startswith("text/event-stream"):
                return await self._read_sse_response(response, message["id"], notify)
            return self._parse_json(await self._read_capped(response))
        finally:
            await response.aclose()

    async def _read_capped(self, response: Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.limits.max_response_bytes:
                raise UpstreamError("too_large", f"the MCP server {self.spec.name!r} sent more than the size limit")
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse_json(self, raw: bytes) -> dict[str, Any]:
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} sent a malformed answer") from None
        if not isinstance(message, dict) or ("result" not in message and "error" not in message):
            raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} sent a malformed answer")
        return message

    async def _read_sse_response(self, response: Response, request_id: Any, notify: Notify | None) -> dict[str, Any]:
        size = 0
        async for data in _sse_data(response.iter_lines()):
            size += len(data)
            if not data.strip():
                continue  # a priming or keep-alive event (resumable streams send one first)
            if size > self.limits.max_response_bytes:
                raise UpstreamError("too_large", f"the MCP server {self.spec.name!r} sent more than the size limit")
            try:
                message = json.loads(data)
            except (ValueError, RecursionError):
                raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} sent a malformed event") from None
            if not isinstance(message, dict):
                continue
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message
            if "method" in message and "id" not in message and notify is not None:
                await notify(message)
        raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} closed the stream without answering")

    # -- the legacy HTTP+SSE transport -----------------------------------------------------------
    async def _open_sse(self) -> None:
        if self._sse_task is not None and not self._sse_task.done():
            return
        self._sse_ready = asyncio.Event()
        self._sse_endpoint = None
        self._sse_task = asyncio.create_task(self._sse_reader(), name=f"sse-upstream-{self.spec.name}")
        ready = asyncio.ensure_future(self._sse_ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._sse_task}, timeout=self.limits.connect_timeout + 5, return_when=asyncio.FIRST_COMPLETED
        )
        ready.cancel()
        if self._sse_endpoint is None:
            if self._sse_task.done() and not self._sse_task.cancelled() and self._sse_task.exception():
                raise UpstreamError("unreachable", f"the MCP server {self.spec.name!r} could not be reached")
            self._sse_task.cancel()
            raise UpstreamError("protocol", f"the MCP server {self.spec.name!r} did not open its SSE stream")

    async def _sse_reader(self) -> None:
        headers = dict(self.spec.headers)
        headers["accept"] = "text/event-stream"
        try:
            async with self.client.stream(
                "GET", self.spec.url, headers=headers, timeout=httpx2.Timeout(self.limits.connect_timeout, read=None)
            ) as response:
                if response.status_code != 200:
                    raise UpstreamError("http_status", f"SSE stream answered HTTP {response.status_code}")
                event = "message"
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                        if event == "endpoint":
                            self._sse_endpoint = urljoin(self.spec.url, data)
                            assert self._sse_ready is not None
                            self._sse_ready.set()
                        else:
                            await self._sse_dispatch(data)
                    elif line == "":
                        event = "message"
        finally:
            self.info = None  # the stream is gone: the next request re-opens it
            for future in self._sse_waiters.values():
                if not future.done():
                    future.set_exception(UpstreamError("unreachable", "the SSE stream of the MCP server closed"))
            self._sse_waiters.clear()

    async def _sse_dispatch(self, data: str) -> None:
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        if "id" in message and ("result" in message or "error" in message):
            future = self._sse_waiters.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
        elif message.get("method") == "notifications/progress":
            token = (message.get("params") or {}).get("progressToken")
            notify = self._sse_notify.get(token) if isinstance(token, (str, int)) else None
            if notify is not None:
                await notify(message)

    async def _post_sse(
        self, message: dict[str, Any], *, expect_response: bool, notify: Notify | None
    ) -> dict[str, Any]:
        if self._sse_endpoint is None or self._sse_task is None or self._sse_task.done():
            await self._open_sse()
        assert self._sse_endpoint is not None
        if urlparse(self._sse_endpoint).netloc != urlparse(self.spec.url).netloc:
            raise UpstreamError(
                "protocol", f"the MCP server {self.spec.name!r} named a message endpoint on another host"
            )
        future: asyncio.Future | None = None
        token = ((message.get("params") or {}).get("_meta") or {}).get("progressToken")
        if expect_response and "id" in message:
            future = asyncio.get_running_loop().create_future()
            self._sse_waiters[message["id"]] = future
            if notify is not None and isinstance(token, (str, int)):
                self._sse_notify[token] = notify
        try:
            headers = dict(self.spec.headers)
            headers["content-type"] = "application/json"
            body = json.dumps(message, separators=(",", ":")).encode()
            response = await self.client.post(self._sse_endpoint, content=body, headers=headers)
            if response.status_code >= 400:
                raise UpstreamError(
                    "http_status", f"the MCP server {self.spec.name!r} answered HTTP {response.status_code}"
                )
            return {} if future is None else await future
        finally:
            if future is not None:
                self._sse_waiters.pop(message["id"], None)
                self._sse_notify.pop(token, None)


async def _sse_data(lines) -> Any:
    """The ``data`` of each server-sent event, multi-line data joined."""
    buffer: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            buffer.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        elif line == "" and buffer:
            yield "\n".join(buffer)
            buffer = []
    if buffer:
        yield "\n".join(buffer)


class UpstreamPool:
    """The process's upstreams, keyed by connector configuration and resolved headers.

    Entries idle for ``idle_timeout`` are closed; at most ``max_entries`` are kept (least recently used
    go first). Must be used from one event loop (the ASGI server's).
    """

    def __init__(self, limits: Limits | None = None, *, max_entries: int = 1000, idle_timeout: float = 900.0) -> None:
        self.limits = limits or Limits()
        self.max_entries = max_entries
        self.idle_timeout = idle_timeout
        self._entries: OrderedDict[str, Upstream] = OrderedDict()
        self._closing: set[asyncio.Task] = set()

    def get(self, spec: UpstreamSpec) -> Upstream:
        key = spec.key
        upstream = self._entries.get(key)
        if upstream is not None:
            self._entries.move_to_end(key)
            return upstream
        upstream = Upstream(spec=spec, limits=self.limits, client=self._client())
        self._entries[key] = upstream
        self._evict()
        return upstream

    def _client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(self.limits.call_timeout, connect=self.limits.connect_timeout),
            limits=httpx2.Limits(
                max_connections=self.limits.max_concurrency + 4, max_keepalive_connections=self.limits.max_concurrency
            ),
            follow_redirects=False,
            trust_env=False,
        )

    def _evict(self) -> None:
        now = time.monotonic()
        for key, upstream in list(self._entries.items()):
            too_many = len(self._entries) > self.max_entries
            idle = now - upstream.last_used > self.idle_timeout
            if too_many or idle:
                del self._entries[key]
                task = asyncio.ensure_future(upstream.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            elif not too_many:
                break

    def drop_connector(self, connector_id: str) -> None:
        for key in [k for k in self._entries if k.startswith(f"{connector_id}:")]:
            upstream = self._entries.pop(key)
            task = asyncio.ensure_future(upstream.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        entries = list(self._entries.values())
        self._entries.clear()
        await asyncio.gather(*(u.close() for u in entries), *self._closing, return_exceptions=True)
