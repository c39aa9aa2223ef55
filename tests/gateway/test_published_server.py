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


def everything_entry():
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
    return entry


@pytest.fixture(scope="module")
def everything_url():
    entry = everything_entry()
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


def test_stale_upstream_session_is_reopened(tmp_path):
    """server-everything keeps sessions in memory: after a restart the gateway's session is unknown (404).

    One gateway worker, so the second call meets the pooled (now stale) upstream session for certain.
    """
    import httpx

    from tests.support import runlayer_server

    from .test_faults import tool_call
    from .test_security import open_session

    entry = everything_entry()
    port = free_port()
    args = ["node", str(entry), "streamableHttp"]
    env = {"PORT": str(port)}
    with runlayer_server(workers=1, tmp_dir=tmp_path) as server:
        headers = {"x-runlayer-api-key": server.keys["alice"], "accept": "application/json, text/event-stream"}
        with running(args, port=port, env=env):
            cid = server.create_connector(url=f"http://127.0.0.1:{port}/mcp", users=["alice"], name="restarts")
            sid = open_session(server, cid)
            first = httpx.post(
                server.mcp_url(cid),
                json=tool_call("echo", {"message": "one"}),
                headers={**headers, "mcp-session-id": sid},
            )
            assert "one" in first.text
        with running(args, port=port, env=env):  # a new process: the old upstream session is gone
            again = httpx.post(
                server.mcp_url(cid),
                json=tool_call("echo", {"message": "two"}),
                headers={**headers, "mcp-session-id": sid},
            )
    assert again.status_code == 200 and "two" in again.json()["result"]["content"][0]["text"]
