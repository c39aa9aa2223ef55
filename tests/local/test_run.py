"""`runlayer run` driven as an AI client drives it, against a real server and a real stdio MCP server."""

from __future__ import annotations

import anyio

from .conftest import recorded, run_cli


def test_tools_list_and_allowed_call(server, local_connector, record_file, tmp_path):
    async def scenario():
        async with run_cli(server, local_connector, tmp_path) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"echo", "add", "count"} <= tools
            result = await client.call_tool("echo", {"text": "hello local"})
            assert not result.is_error
            assert result.content[0].text == "hello local"

    anyio.run(scenario)
    assert any(r["tool"] == "echo" and r["arguments"] == {"text": "hello local"} for r in recorded(record_file))
    events = server.audit(wait_for=1, action_type="tool_call_success", server_id=local_connector)
    event = next(e for e in events if e["details"].get("arguments") == {"text": "hello local"})
    assert event["actor_info"]["email"] == "alice@example.com"
    assert event["details"]["client_name"].startswith("mcp")
