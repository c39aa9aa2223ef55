"""An MCP server that misbehaves on purpose, for the gateway's fault tests.

    python tests/gateway/bad_upstream.py PORT

It completes the handshake properly (so the gateway reaches it), then answers ``tools/call`` according to
the URL path: ``/500`` (HTTP 500), ``/malformed`` (broken JSON), ``/reset`` (closes mid-response),
``/huge`` (a 20 MB body), ``/hang`` (never answers), ``/ok`` (a normal result).
"""

from __future__ import annotations

import asyncio
import json
import sys


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if method != "POST":
                await respond(writer, 405, b"")
                continue
            message = json.loads(body)
            rpc = message.get("method")
            if "id" not in message:
                await respond(writer, 202, b"")
            elif rpc == "server/discover":
                await respond_json(
                    writer, {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}}
                )
            elif rpc == "initialize":
                result = {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "bad", "version": "0"},
                }
                await respond_json(
                    writer, {"jsonrpc": "2.0", "id": message["id"], "result": result}, {"mcp-session-id": "s1"}
                )
            elif rpc == "tools/list":
                tools = [{"name": "boom", "inputSchema": {"type": "object"}}]
                await respond_json(writer, {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}})
            elif path == "/500":
                await respond(
                    writer, 500, b"Internal Server Error: Traceback (most recent call last): /srv/secret/path.py"
                )
            elif path == "/malformed":
                await respond(writer, 200, b'{"jsonrpc": "2.0", "id": ', "application/json")
            elif path == "/reset":
                writer.write(
                    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"jsonrpc"'
                )
                await writer.drain()
                writer.transport.abort()
                return
            elif path == "/huge":
                text = "x" * (20 * 1024 * 1024)
                await respond_json(
                    writer,
                    {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [{"type": "text", "text": text}]}},
                )
            elif path == "/hang":
                await asyncio.sleep(3600)
            else:
                result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
                await respond_json(writer, {"jsonrpc": "2.0", "id": message["id"], "result": result})
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def respond(
    writer, status: int, body: bytes, content_type: str = "text/plain", extra: dict | None = None
) -> None:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
    for k, v in (extra or {}).items():
        head += f"{k}: {v}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()


async def respond_json(writer, message: dict, extra: dict | None = None) -> None:
    await respond(writer, 200, json.dumps(message).encode(), "application/json", extra)


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
