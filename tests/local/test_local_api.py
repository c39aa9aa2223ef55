"""The local API's answers to bad input, strangers and stale uploads: clear 4xx with a message, never a 500."""

from __future__ import annotations

import httpx
import pytest

from .conftest import create_local


@pytest.fixture(scope="module")
def local(server) -> str:
    return create_local(server, name="api-checks", env={"GH": "{{ user.secret.GH_TOKEN }}", "PLAIN": "1"})


def _raw(server, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=30, **kwargs)


def test_credentials(server, local):
    missing = _raw(server, "GET", f"/api/v1/local/{local}")
    assert missing.status_code == 401 and "runlayer login" in missing.json()["detail"]
    assert "resource_metadata=" in missing.headers["www-authenticate"]
    wrong = _raw(server, "GET", f"/api/v1/local/{local}", headers={"x-runlayer-api-key": "rl_wrong"})
    assert wrong.status_code == 401
    in_url = _raw(server, "GET", f"/api/v1/local/{local}?access_token={server.keys['alice']}")
    assert in_url.status_code == 401 and "headers only" in in_url.json()["detail"]
    bearer = _raw(server, "GET", "/api/v1/local/resolve?target=api-checks",
                  headers={"authorization": f"Bearer {server.keys['alice']}"})  # fmt: skip
    assert bearer.json() == {"server_id": local}
    origin = _raw(server, "GET", f"/api/v1/local/{local}",
                  headers={"x-runlayer-api-key": server.keys["alice"], "origin": "https://evil.example"})  # fmt: skip
    assert origin.status_code == 403
    events = server.audit(wait_for=1, action_type="auth_failed")
    assert server.keys["alice"] not in str(events)


def test_details_resolve_and_per_user_secrets(server, local):
    server.api("DELETE", "/api/v1/secrets/GH_TOKEN", user="alice")
    unset = server.api("GET", f"/api/v1/local/{local}", user="alice")
    assert unset.status_code == 400 and "GH_TOKEN" in unset.json()["detail"]
    assert server.api("PUT", "/api/v1/secrets/GH_TOKEN", user="alice", json={"value": "ghp_alice"}).status_code in (
        200,
        201,
    )
    details = server.api("GET", f"/api/v1/local/{local}", user="alice").json()
    assert details["transport_config"]["env"] == {"GH": "ghp_alice", "PLAIN": "1"}
    assert details["transport_type"] == "stdio" and details["deployment_mode"] == "local"
    assert isinstance(details["version"], int) and details["id"] == local
    stranger = server.api("GET", f"/api/v1/local/{local}", user="bob")
    assert stranger.status_code == 403 and "do not have access" in stranger.json()["detail"]
    assert server.api("GET", "/api/v1/local/resolve", user="bob", params={"target": "api-checks"}).status_code == 404
    assert server.api("GET", "/api/v1/local/resolve", user="alice").status_code == 400
    assert server.api("GET", "/api/v1/local/not-a-uuid", user="alice").status_code == 404
    ghost = server.api("GET", "/api/v1/local/00000000-0000-4000-8000-000000000000", user="alice")
    assert ghost.status_code == 404
    hosted = server.create_connector(url="http://127.0.0.1:9/mcp", users=["alice"], name="hosted-not-local")
    wrong_kind = server.api("GET", f"/api/v1/local/{hosted}", user="alice")
    assert wrong_kind.status_code == 404 and f"/api/v1/proxy/{hosted}/mcp" in wrong_kind.json()["detail"]


@pytest.mark.parametrize(
    ("endpoint", "body", "words"),
    [
        ("pre", b"{not json", "not valid JSON"),
        ("pre", b"[1, 2]", "JSON object"),
        ("pre", b'{"params": {}}', "method must be"),
        ("pre", b'{"method": "tools/call", "params": []}', "params must be an object"),
        ("pre", b'{"method": "tools/call", "params": {"arguments": {}}}', "params.name"),
        ("pre", b'{"method": "tools/call", "params": {"name": "echo", "arguments": [1]}}', "arguments must be"),
        ("pre", b'{"method": "tools/call", "params": {"name": "e", "arguments": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
         "not valid JSON"),
        ("post", b'{"method": "tools/call", "params": {"name": "echo"}}', "correlation_id"),
        ("post", b'{"method": "tools/call", "params": {"name": "echo"}, "correlation_id": "c", "upstream_error": 5}',
         "upstream_error"),
    ],
)  # fmt: skip
def test_bad_bodies_get_400_with_a_message(server, local, endpoint, body, words):
    resp = server.api("POST", f"/api/v1/local/{local}/{endpoint}", user="alice", content=body,
                      headers={"content-type": "application/json"})  # fmt: skip
    assert resp.status_code == 400 and words in resp.json()["detail"]


def test_capability_uploads(server, local):
    path = f"/api/v1/local/{local}/capabilities"
    server.api("PUT", "/api/v1/secrets/GH_TOKEN", user="alice", json={"value": "ghp_alice"})
    version = server.api("GET", f"/api/v1/local/{local}", user="alice").json()["version"]
    tool = {"name": "hello", "description": "Say hello.", "inputSchema": {"type": "object"}}
    body = {"tools": {"hello": tool}, "resources": {}, "prompts": {}, "synced_at": "2026-11-23T00:00:00Z"}
    stale = server.api("POST", path, user="alice", params={"server_version": version - 1}, json=body)
    assert stale.status_code == 409 and f"version {version}" in stale.json()["detail"]
    bad_version = server.api("POST", path, user="alice", params={"server_version": "x"}, json=body)
    assert bad_version.status_code == 400
    bad_tools = server.api("POST", path, user="alice", params={"server_version": version}, json={"tools": 5})
    assert bad_tools.status_code == 400 and "tools must be" in bad_tools.json()["detail"]
    too_big = server.api("POST", path, user="alice", content=b"{" + b" " * (9 * 1024 * 1024) + b"}",
                         headers={"content-type": "application/json"})  # fmt: skip
    assert too_big.status_code == 413
    assert server.api("POST", path, user="bob", params={"server_version": version}, json=body).status_code == 403
    ok = server.api("POST", path, user="alice", params={"server_version": version}, json=body)
    assert ok.status_code == 200 and ok.json()["added"] == ["tool:hello"]
    assert server.api("GET", f"/api/v1/local/{local}", user="alice").json()["sync_required"] is False
    caps = server.api("GET", f"/api/v1/servers/{local}/capabilities").json()
    assert [c["name"] for c in caps] == ["hello"]
