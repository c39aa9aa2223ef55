"""Published software on the local path: the published `runlayer` CLI (PyPI runlayer==0.31.17) against our
server, and our CLI in front of a published stdio MCP server (PyPI mcp-server-time)."""

from __future__ import annotations

import json
import os

import anyio
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from tests.support import cached_venv

from .conftest import create_local, recorded, run_cli

pytestmark = pytest.mark.slow


def test_published_runlayer_cli_runs_a_governed_stdio_connector(server, record_file, tmp_path):
    published = cached_venv("published-runlayer", "runlayer==0.31.17") / "bin" / "runlayer"
    connector = create_local(server, name="for-published-cli", env={"DEMO_RECORD_FILE": str(record_file)})
    body = {"name": "no add here", "effect": "deny", "connector": connector, "users": ["alice"], "tools": ["add"]}
    assert server.api("POST", "/api/v1/policies", json=body).status_code == 201
    params = StdioServerParameters(
        command=str(published),
        args=["run", connector, "--host", server.url, "--secret", server.keys["alice"]],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )

    async def scenario():
        with open(tmp_path / "published-stderr.log", "w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "echo" in names and "add" not in names
                allowed = await client.call_tool("echo", {"text": "via published cli"})
                assert not allowed.is_error and allowed.content[0].text == "via published cli"
                # (send_request: Client.call_tool would look "add" up in tools/list, where it is hidden)
                request = types.CallToolRequest(params=types.CallToolRequestParams(name="add", arguments={"a": 1}))
                denied = await client.session.send_request(request, types.CallToolResult)
                assert "Blocked by Runlayer" in denied.content[0].text

    anyio.run(scenario)
    calls = recorded(record_file)
    assert any(r["arguments"] == {"text": "via published cli"} for r in calls)
    assert not any(r["tool"] == "add" and r["env"].get("DEMO_RECORD_FILE") == str(record_file) for r in calls[-3:])
    success = server.audit(wait_for=1, action_type="tool_call_success", server_id=connector)
    assert success[0]["details"]["arguments"] == {"text": "via published cli"}
    denied = server.audit(wait_for=1, action_type="access_denied", server_id=connector)
    assert denied[0]["resource_info"]["name"] == "add"
    caps = server.api("GET", f"/api/v1/servers/{connector}/capabilities").json()
    assert "echo" in {c["name"] for c in caps}  # its capability upload was accepted and pinned without conflict


def test_our_cli_in_front_of_published_mcp_server_time(server, tmp_path):
    time_server = cached_venv("pypi-mcp-server-time", "mcp-server-time==2026.10.19") / "bin" / "mcp-server-time"
    connector = create_local(server, name="time", command=str(time_server), args=["--local-timezone", "UTC"])
    body = {"name": "no conversions", "effect": "deny", "connector": connector, "users": ["alice"],
            "tools": ["convert_time"]}  # fmt: skip
    assert server.api("POST", "/api/v1/policies", json=body).status_code == 201

    async def scenario():
        async with run_cli(server, "time", tmp_path) as client:  # by alias
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"get_current_time"}
            now = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert not now.is_error and json.loads(now.content[0].text)["timezone"] == "UTC"
            blocked = await client.call_tool("convert_time", {"source_timezone": "UTC", "time": "10:00",
                                                              "target_timezone": "Asia/Tokyo"})  # fmt: skip
            assert blocked.is_error and "Blocked by Runlayer" in blocked.content[0].text

    anyio.run(scenario)
    events = server.audit(wait_for=1, action_type="tool_call_success", server_id=connector)
    assert events[0]["resource_info"]["name"] == "get_current_time"
