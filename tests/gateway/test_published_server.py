"""A published MCP server (npm @modelcontextprotocol/server-everything, TypeScript SDK, handshake era) behind the
gateway: its tools, resources and prompts arrive intact for clients of both eras."""

from __future__ import annotations

import fcntl
import shutil
import subprocess

import anyio
import pytest

from tests.support import ROOT, free_port, running

from .conftest import mcp_client

PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"
CACHE = ROOT / "var" / "npm-everything"


@pytest.fixture(scope="module")
def everything_url():
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed to run the published server-everything")
    entry = CACHE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:  # parallel test workers install it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not entry.exists():
            subprocess.run(
                ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(CACHE), PACKAGE],
                check=True,
                timeout=600,
            )
    port = free_port()
    with running(["node", str(entry), "streamableHttp"], port=port, env={"PORT": str(port)}):
        yield f"http://127.0.0.1:{port}/mcp"


async def inventory(url: str, key: str | None, mode: str) -> dict:
    async with mcp_client(url, key, mode=mode) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        prompts = (await client.list_prompts()).prompts
        echo = await client.session.call_tool("echo", {"message": "through the gateway"})
        return {
            "tools": sorted((t.name, t.description) for t in tools),
            "resources": sorted(r.uri for r in resources),
            "prompts": sorted(p.name for p in prompts),
            "echo": echo.content[0].text,
        }


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_server_everything_through_the_gateway(server, everything_url, mode):
    cid = server.create_connector(url=everything_url, users=["alice"], name=f"everything-{mode}")
    direct = anyio.run(inventory, everything_url, None, "legacy")
    proxied = anyio.run(inventory, server.mcp_url(cid), server.keys["alice"], mode)
    assert proxied == direct
    assert "through the gateway" in proxied["echo"]
    assert len(proxied["tools"]) >= 5 and proxied["resources"] and proxied["prompts"]
