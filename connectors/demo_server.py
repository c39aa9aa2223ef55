"""A small MCP server that ships with Runlayer, for the demo data, the tests and the benchmarks.

    python -m connectors.demo_server                                 # stdio
    python -m connectors.demo_server --transport streamable-http --port 8765 [--json] [--stateless]
    python -m connectors.demo_server --transport sse --port 8766

It imports nothing from Django, so the CLI and tests can launch it as a plain child process.
Set ``DEMO_RECORD_FILE`` to a path and every tool call's name, arguments and request headers are
appended to it as JSON lines: tests use that to prove what did (or did not) reach the upstream.
"""

from __future__ import annotations

import os
import sys

# Run as a script (``python connectors/demo_server.py``), Python puts this file's folder first on the path,
# where ``connectors/selectors.py`` would shadow the standard library's ``selectors``: drop it.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from mcp.server import MCPServer  # noqa: E402
from mcp.server.mcpserver import Context  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

server = MCPServer(
    name="runlayer-demo",
    instructions="A demo server with a few harmless tools, resources and prompts.",
    version="1.0.0",
)


def _record(tool: str, arguments: dict[str, Any], ctx: Context | None = None) -> None:
    path = os.environ.get("DEMO_RECORD_FILE")
    if not path:
        return
    headers: dict[str, str] = {}
    request = getattr(ctx.request_context, "request", None) if ctx is not None else None
    if request is not None:
        headers = dict(request.headers)
    entry = {
        "tool": tool,
        "arguments": arguments,
        "headers": headers,
        "env": dict(os.environ),
        "pid": os.getpid(),
        "at": time.time(),
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


# DEMO_ECHO_DESCRIPTION changes the echo tool's definition: tests use it to play a "rug pull".
@server.tool(description=os.environ.get("DEMO_ECHO_DESCRIPTION", "Echo the given text back."))
def echo(text: str, ctx: Context) -> str:
    _record("echo", {"text": text}, ctx)
    return text


@server.tool(description="Count to `steps`, reporting progress after each step.")
async def count(steps: int, ctx: Context) -> str:
    _record("count", {"steps": steps}, ctx)
    for i in range(1, max(0, min(steps, 100)) + 1):
        await ctx.report_progress(i, steps, f"step {i}")
        await asyncio.sleep(0.01)
    return f"counted to {steps}"


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    _record("add", {"a": a, "b": b})
    return a + b


@server.tool(description="Wait for the given number of milliseconds, then answer.")
async def sleep_ms(ms: int) -> str:
    _record("sleep_ms", {"ms": ms})
    await asyncio.sleep(max(0, min(ms, 600_000)) / 1000)
    return f"slept {ms} ms"


@server.tool(description="Always fail with the given message.")
def fail(message: str = "demo failure") -> str:
    _record("fail", {"message": message})
    raise ValueError(message)


@server.tool(description="Return the value of an environment variable of this server, or an empty string.")
def read_env(name: str) -> str:
    _record("read_env", {"name": name})
    return os.environ.get(name, "")


@server.resource("demo://readme", name="readme", description="What this server is.", mime_type="text/plain")
def readme() -> str:
    return "The Runlayer demo MCP server."


@server.resource("demo://greeting/{name}", name="greeting", description="A greeting for someone.")
def greeting(name: str) -> str:
    return f"Hello, {name}!"


@server.prompt(description="Ask for a summary of a text.")
def summarize(text: str) -> str:
    return f"Summarize this in one sentence:\n\n{text}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stdio", "streamable-http", "sse"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", action="store_true", help="answer with JSON bodies instead of SSE streams")
    parser.add_argument("--stateless", action="store_true", help="no sessions (each POST stands alone)")
    args = parser.parse_args(argv)
    if args.transport == "stdio":
        print(f"runlayer-demo: serving over stdio (pid {os.getpid()})", file=sys.stderr, flush=True)
        server.run("stdio")
        if os.environ.get("DEMO_LINGER"):  # misbehave: stay alive after stdin closed (tests of orphan handling)
            time.sleep(3600)
        return
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{args.host}:*", "127.0.0.1:*", "localhost:*"],
        allowed_origins=[f"http://{args.host}:*", "http://127.0.0.1:*", "http://localhost:*"],
    )
    if args.transport == "sse":
        server.run("sse", host=args.host, port=args.port, transport_security=security)
    else:
        server.run(
            "streamable-http",
            host=args.host,
            port=args.port,
            json_response=args.json,
            stateless_http=args.stateless,
            transport_security=security,
        )


if __name__ == "__main__":
    main()
