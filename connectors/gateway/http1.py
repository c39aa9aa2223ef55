"""A small keep-alive HTTP/1.1 client for the gateway's upstream POSTs.

The general-purpose clients spend about a millisecond per request in pure-Python protocol handling,
more than an upstream MCP call itself takes on a fast network. This client does only what the gateway
needs (POST/DELETE with a body, keep-alive, ``Content-Length`` or chunked responses, streaming for SSE,
TLS) on asyncio streams, with the C parser from ``httptools`` (which uvicorn already uses).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


class HTTPClientError(OSError):
    """The connection failed or the peer spoke broken HTTP."""


@dataclass
class _Parsed:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    headers_done: asyncio.Event = field(default_factory=asyncio.Event)
    body: asyncio.Queue = field(default_factory=asyncio.Queue)  # bytes chunks, then None at the end
    complete: bool = False
    keep_alive: bool = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.broken = False

    def close(self) -> None:
        self.broken = True
        self.writer.close()


class Response:
    """A response whose body is read (or streamed) after the headers arrived."""

    def __init__(self, pool: ConnectionPool, conn: _Connection, parsed: _Parsed, parser, reader_task) -> None:
        self._pool, self._conn, self._parsed, self._parser, self._task = pool, conn, parsed, parser, reader_task
        self.status_code = parsed.status
        self.headers = parsed.headers
        self._released = False

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._parsed.body.get()
            if chunk is None:
                if not self._parsed.complete:
                    raise HTTPClientError("connection closed before the response ended")
                return
            yield chunk

    async def iter_lines(self) -> AsyncIterator[str]:
        pending = b""
        async for chunk in self.iter_bytes():
            pending += chunk
            while True:
                index = pending.find(b"\n")
                if index < 0:
                    break
                line, pending = pending[:index], pending[index + 1 :]
                yield line.rstrip(b"\r").decode("utf-8", "replace")
        if pending:
            yield pending.rstrip(b"\r").decode("utf-8", "replace")

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        if self._parsed.complete and self._parsed.keep_alive and not self._conn.broken:
            await self._task
            self._pool._release(self._conn)
        else:
            self._task.cancel()
            self._conn.close()
            self._pool._discard(self._conn)


class ConnectionPool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(self, url: str, *, max_connections: int = 64, connect_timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.connect_timeout = connect_timeout
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._open: set[_Connection] = set()

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls, limit=2**20), self.connect_timeout
            )
        except (TimeoutError, OSError) as exc:
            raise HTTPClientError(f"cannot connect to {self.host}:{self.port}") from exc
        conn = _Connection(reader, writer)
        self._open.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        self._idle.append(conn)
        self._slots.release()

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        self._slots.release()

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Response:
        """Send a request; returns once the response headers arrived. Retries once on a stale idle connection."""
        await self._slots.acquire()
        for attempt in (0, 1):
            reused = bool(self._idle)
            conn = self._idle.popleft() if reused else None
            try:
                if conn is None:
                    conn = await self._connect()
                return await self._exchange(conn, method, path, headers, body)
            except HTTPClientError:
                if conn is not None:
                    conn.close()
                    self._open.discard(conn)
                if not (reused and attempt == 0):
                    self._slots.release()
                    raise
            except BaseException:
                if conn is not None:
                    conn.close()
                    self._open.discard(conn)
                self._slots.release()
                raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, conn: _Connection, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.host_header}", f"content-length: {len(body)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length"))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            conn.writer.write(head + body)
            await conn.writer.drain()
        except (OSError, RuntimeError) as exc:
            raise HTTPClientError("connection lost while sending") from exc

        parsed = _Parsed()
        callbacks = _Callbacks(parsed)
        parser = httptools.HttpResponseParser(callbacks)
        callbacks.parser = parser

        async def read() -> None:
            try:
                while not parsed.complete:
                    data = await conn.reader.read(65536)
                    if not data:
                        break
                    parser.feed_data(data)
            except (OSError, httptools.HttpParserError):
                pass
            finally:
                if not parsed.complete:
                    conn.broken = True
                parsed.headers_done.set()
                parsed.body.put_nowait(None)

        task = asyncio.ensure_future(read())
        await parsed.headers_done.wait()
        if parsed.status == 0:
            task.cancel()
            raise HTTPClientError("connection closed before a response arrived")
        return Response(self, conn, parsed, parser, task)

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()


class _Callbacks:
    def __init__(self, parsed: _Parsed) -> None:
        self.parsed = parsed
        self.parser = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.parsed.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_status(self, status: bytes) -> None:
        pass

    def on_headers_complete(self) -> None:
        self.parsed.status = self.parser.get_status_code()
        connection = self.parsed.headers.get("connection", "").lower()
        self.parsed.keep_alive = connection != "close"
        self.parsed.headers_done.set()

    def on_body(self, body: bytes) -> None:
        self.parsed.body.put_nowait(bytes(body))

    def on_message_complete(self) -> None:
        self.parsed.complete = True
