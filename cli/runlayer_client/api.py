"""HTTP calls to the Runlayer server, with every failure turned into a readable ``CliError``."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from . import __version__
from .errors import FAILURE, NOT_FOUND, NOT_LOGGED_IN, UNREACHABLE, CliError
from .fasthttp import HttpFailure, KeepAliveClient, usable_for

USER_AGENT = f"Runlayer CLI (self-hosted {__version__})"
TIMEOUT = httpx2.Timeout(30.0, connect=5.0)


def base_headers(key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "X-Runlayer-Client": "cli"}
    if key:
        headers["x-runlayer-api-key"] = key
    return headers


def check(response: httpx2.Response, host: str) -> Any:
    return _checked(response.status_code, response.content, host)


def _checked(status: int, content: bytes, host: str) -> Any:
    if status >= 400:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) and isinstance(body.get("detail"), str) else None
        detail = detail or f"HTTP {status}"
        if status == 401:
            raise CliError(f"{host} refused the API key ({detail})", NOT_LOGGED_IN)
        if status in (403, 404):
            raise CliError(detail, NOT_FOUND)
        raise CliError(f"{host} answered {status}: {detail}", FAILURE)
    try:
        return json.loads(content)
    except ValueError:
        raise CliError(f"{host} answered {status} with a body that is not JSON", FAILURE) from None


def unreachable(host: str, exc: Exception) -> CliError:
    return CliError(f"cannot reach Runlayer at {host} ({type(exc).__name__}); is the server running?", UNREACHABLE)


class Api:
    """Blocking client for the one-shot commands (login, whoami, setup, logs)."""

    def __init__(self, host: str, key: str | None) -> None:
        self.host = host
        self.http = httpx2.Client(base_url=host, headers=base_headers(key), timeout=TIMEOUT)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx2.HTTPError as exc:
            raise unreachable(self.host, exc) from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return check(self.request("GET", path, **kwargs), self.host)

    def close(self) -> None:
        self.http.close()


class AsyncApi:
    """Keep-alive client for ``runlayer run``: two round trips per governed call must stay cheap."""

    def __init__(self, host: str, key: str, *, client_label: str = "") -> None:
        self.host = host
        headers = base_headers(key)
        if client_label:
            headers["x-runlayer-mcp-client"] = client_label
        limits = httpx2.Limits(max_keepalive_connections=8, keepalive_expiry=60)
        self.http = httpx2.AsyncClient(base_url=host, headers=headers, timeout=TIMEOUT, limits=limits)
        self.fast = KeepAliveClient(host, headers) if usable_for(host) else None

    def set_client_label(self, label: str) -> None:
        self.http.headers["x-runlayer-mcp-client"] = label[:200]
        if self.fast is not None:
            self.fast.set_header("x-runlayer-mcp-client", label[:200])

    async def post_json(self, path: str, body: Any) -> Any:
        """POST on the hot path (``/pre``, ``/post``): the JSON answer, or a ``CliError``."""
        if self.fast is None:
            return await self.call("POST", path, json=body)
        try:
            status, content = await self.fast.post_json(path, body)
        except HttpFailure as exc:
            raise CliError(
                f"cannot reach Runlayer at {self.host} ({exc}); is the server running?", UNREACHABLE
            ) from None
        return _checked(status, content, self.host)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            return await self.http.request(method, path, **kwargs)
        except httpx2.HTTPError as exc:
            raise unreachable(self.host, exc) from None

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return check(await self.request(method, path, **kwargs), self.host)

    async def aclose(self) -> None:
        if self.fast is not None:
            self.fast.close()
        await self.http.aclose()
