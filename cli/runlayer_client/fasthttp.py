"""A small keep-alive HTTP/1.1 client for the two round trips of every governed call (``/pre``, ``/post``).

A general client costs about half a millisecond per request in Python; this one writes the request in one
piece and reads a ``Content-Length`` or chunked answer, over pooled connections (TLS too). Everything
else the CLI sends goes through httpx2. Behind an HTTP proxy (``HTTPS_PROXY``...) httpx2 is used instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 30.0
MAX_BODY = 64 * 1024 * 1024


class HttpFailure(Exception):
    """The request could not be made or answered (connection refused, reset, timeout, garbage)."""


def usable_for(base_url: str) -> bool:
    scheme = urlsplit(base_url).scheme
    proxy_vars = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    return scheme in ("http", "https") and not any(os.environ.get(v) for v in proxy_vars)


class KeepAliveClient:
    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": host_header, **headers}.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._ssl = ssl.create_default_context() if self.tls else None

    def set_header(self, name: str, value: str) -> None:
        lines = [line for line in self.fixed.split("\r\n") if line and not line.lower().startswith(name.lower() + ":")]
        self.fixed = "".join(f"{line}\r\n" for line in [*lines, f"{name}: {value}"])

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        head = (
            f"POST {self.prefix}{path} HTTP/1.1\r\n{self.fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode("latin-1")
        for attempt in range(2):
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._connect()
            try:
                conn[1].write(head + payload)
                status, keep, data = await asyncio.wait_for(self._read(conn[0]), TIMEOUT)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn[1].close()
                if reused and attempt == 0 and not isinstance(exc, asyncio.TimeoutError):
                    continue  # a kept-alive connection the server had closed: once more on a new one
                raise HttpFailure(type(exc).__name__) from None
            if keep:
                self.idle.append(conn)
            else:
                conn[1].close()
            return status, data
        raise HttpFailure("connection lost")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=MAX_BODY), 5.0
            )
        except (TimeoutError, OSError) as exc:
            raise HttpFailure(type(exc).__name__) from None

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ValueError("response too large")
            return int(status), keep, await reader.readexactly(length)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return int(status), keep, b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        return int(status), False, await reader.read(MAX_BODY)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
