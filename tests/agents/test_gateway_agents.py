"""An agent account through the real gateway: its own token, and on behalf of a user (both must be allowed)."""

from __future__ import annotations

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from tests.support import demo_server, runlayer_server


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with demo_server(json_response=True) as url, runlayer_server(tmp_dir=tmp_path_factory.mktemp("srv")) as server:
        connector = server.create_connector(url=url, users=["alice"], name="agent-target")
        agent = server.api("POST", "/api/v1/agent-accounts", json={"name": "helper"}).json()
        yield server, connector, agent


def _oauth(server, agent, **form) -> dict:
    resp = httpx.post(f"{server.url}/api/v1/oauth/token", data=form, auth=(agent["client_id"], agent["client_secret"]))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _session(server, connector, token):
    async def run():
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30)
        url = server.mcp_url(connector)
        async with http, Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            request = types.CallToolRequest(params=types.CallToolRequestParams(name="add", arguments={"a": 1, "b": 2}))
            result = await c.session.send_request(request, types.CallToolResult)
            return names, result

    return anyio.run(run)


def test_agent_token_is_governed_by_policies_naming_the_agent(setup):
    server, connector, agent = setup
    token = _oauth(server, agent, grant_type="client_credentials")["access_token"]
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    closed = httpx.post(server.mcp_url(connector), json=init, headers={"authorization": f"Bearer {token}",
                        "accept": "application/json, text/event-stream"})  # fmt: skip
    assert closed.status_code == 403 and "do not have access" in closed.json()["error"]["message"]
    body = {"name": "helper may add", "effect": "allow", "connector": connector, "agents": ["helper"], "tools": ["add"]}
    assert server.api("POST", "/api/v1/policies", json=body).status_code == 201
    names, result = _session(server, connector, token)
    assert names == {"add"} and not result.is_error and result.content[0].text == "3"
    events = server.audit(wait_for=1, action_type="tool_call_success", server_id=connector)
    assert events[0]["actor_info"]["name"] == "helper"


def test_on_behalf_of_gets_the_intersection(setup):
    server, connector, agent = setup
    assert server.api("POST", "/api/v1/delegations", user="alice", json={"agent": "helper"}).status_code == 201
    deny = {"name": "alice may not add", "effect": "deny", "connector": connector, "users": ["alice"], "tools": ["add"]}
    exchange = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": server.keys["alice"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    token = _oauth(server, agent, **exchange)["access_token"]
    names, result = _session(server, connector, token)  # agent: add only; alice: everything → add
    assert names == {"add"} and not result.is_error
    policy = server.api("POST", "/api/v1/policies", json=deny).json()
    names, result = _session(server, connector, token)  # now alice may not add → nothing left
    assert names == set()
    assert result.is_error and "(for the user)" in result.content[0].text
    server.api("DELETE", f"/api/v1/policies/{policy['id']}")
    denied = server.audit(wait_for=1, action_type="access_denied", server_id=connector)
    assert "(for the user)" in denied[0]["details"]["reason"]
