"""The shipped demo server runs over stdio exactly as the demo's local connector launches it."""

from __future__ import annotations

import sys

import anyio
from mcp import Client, StdioServerParameters

from tests.support import ROOT


def test_demo_server_runs_as_a_script_over_stdio(tmp_path):
    async def scenario():
        params = StdioServerParameters(
            command=sys.executable, args=[str(ROOT / "connectors" / "demo_server.py")], cwd=str(tmp_path)
        )
        async with Client(params, mode="legacy", cache=None) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.session.call_tool("add", {"a": 2, "b": 3})
            return names, result.content[0].text

    names, text = anyio.run(scenario)
    assert {"echo", "add", "count"} <= names and text == "5"
