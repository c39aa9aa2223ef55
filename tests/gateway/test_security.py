"""security.md items 2, 3, 7–10 on the gateway, with raw HTTP so every status is visible."""

from __future__ import annotations

import httpx
import pytest

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
ACCEPT = "application/json, text/event-stream"


def post(server, connector, body=None, *, user="alice", key=None, headers=None, content=None, params=None):
    hdrs = {"accept": ACCEPT, "content-type": "application/json"}
    if user or key:
        hdrs["x-runlayer-api-key"] = key or server.keys[user]
    hdrs.update(headers or {})
    return httpx.post(
        server.mcp_url(connector),
        json=body if content is None else None,
        content=content,
        headers=hdrs,
        params=params,
        timeout=30,
    )


def open_session(server, connector, user="alice") -> str:
    resp = post(server, connector, INIT, user=user)
    assert resp.status_code == 200, resp.text
    return resp.headers["mcp-session-id"]


def call(session_id: str, name="add", arguments=None, request_id=2):
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {"a": 1, "b": 1}},
    }


def test_missing_and_bad_credentials_get_401_with_resource_metadata(server, connector):
    for kwargs in ({"user": None}, {"user": None, "key": "rl_not-a-key"}, {"user": None, "key": "some-oauth-token"}):
        resp = post(server, connector, INIT, **kwargs)
        assert resp.status_code == 401
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge
        assert "/.well-known/oauth-protected-resource" in challenge
    failed = server.audit(action_type="auth_failed", server_id=connector, wait_for=3)
    assert len(failed) >= 3


def test_token_in_query_string_is_refused(server, connector):
    resp = post(server, connector, INIT, user=None, params={"access_token": server.keys["alice"]})
    assert resp.status_code == 401 and "headers only" in resp.json()["detail"]


def test_revoked_key_fails_on_the_next_call(server, connector):
    created = server.api("POST", "/api/v1/api-keys", user="alice", json={"name": "short-lived"}).json()
    resp = post(server, connector, INIT, user=None, key=created["key"])
    assert resp.status_code == 200
    sid = resp.headers["mcp-session-id"]
    ok = post(server, connector, call(sid), user=None, key=created["key"], headers={"mcp-session-id": sid})
    assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "2"
    assert server.api("DELETE", f"/api/v1/api-keys/{created['id']}", user="alice").status_code == 204
    for _ in range(4):  # every worker refuses it at once
        resp = post(server, connector, call(sid), user=None, key=created["key"], headers={"mcp-session-id": sid})
        assert resp.status_code == 401


def test_bad_origin_is_403_and_unknown_host_is_refused(server, connector):
    assert post(server, connector, INIT, headers={"origin": "https://evil.example"}).status_code == 403
    assert post(server, connector, INIT, headers={"origin": server.url}).status_code == 200
    assert post(server, connector, INIT, headers={"host": "attacker.example"}).status_code in (400, 421)


def test_protocol_version_header_and_batches(server, connector):
    sid = open_session(server, connector)
    bad = post(server, connector, call(sid), headers={"mcp-session-id": sid, "mcp-protocol-version": "1999-01-01"})
    assert bad.status_code == 400
    good = post(server, connector, call(sid), headers={"mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})
    assert good.status_code == 200
    batch = post(server, connector, [call(sid), call(sid, request_id=3)], headers={"mcp-session-id": sid})
    assert batch.status_code == 400 and "batch" in batch.json()["error"]["message"]


def test_modern_requests_are_validated(server, connector):
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    body = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": meta},
    }
    ok = post(
        server,
        connector,
        body,
        headers={"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "add"},
    )
    assert ok.status_code == 200 and ok.json()["result"]["content"][0]["text"] == "3"
    assert ok.json()["result"]["resultType"] == "complete"
    mismatch = post(
        server,
        connector,
        body,
        headers={"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list", "mcp-name": "add"},
    )
    assert mismatch.status_code == 400
    unsupported = {
        **body,
        "params": {**body["params"], "_meta": {**meta, "io.modelcontextprotocol/protocolVersion": "2030-01-01"}},
    }
    resp = post(
        server,
        connector,
        unsupported,
        headers={"mcp-protocol-version": "2030-01-01", "mcp-method": "tools/call", "mcp-name": "add"},
    )
    assert resp.status_code == 400


def test_sessions_are_bound_to_user_and_connector(server, connector, upstream):
    sid = open_session(server, connector)
    other = server.create_connector(url=upstream, users=["alice", "bob"], name="other")
    assert post(server, connector, call(sid), headers={"mcp-session-id": sid}).status_code == 200
    # bob may use `other`, but not alice's session, on either path
    assert post(server, connector, call(sid), user="bob", headers={"mcp-session-id": sid}).status_code == 404
    assert post(server, other, call(sid), user="bob", headers={"mcp-session-id": sid}).status_code == 404
    # alice's session does not open the other connector either
    assert post(server, other, call(sid), headers={"mcp-session-id": sid}).status_code == 404
    forged = sid[:-3] + ("AAA" if not sid.endswith("AAA") else "BBB")
    assert post(server, connector, call(sid), headers={"mcp-session-id": forged}).status_code == 404
    assert post(server, connector, call(sid), headers={"mcp-session-id": "unknown"}).status_code == 404
    assert post(server, connector, call(sid)).status_code == 400  # no session at all


def test_body_size_cap_and_hostile_json(server, connector):
    sid = open_session(server, connector)
    big = call(sid, name="echo", arguments={"text": "x" * (2 * 1024 * 1024)})
    assert post(server, connector, big, headers={"mcp-session-id": sid}).status_code == 413
    deep = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = post(server, connector, content=deep, headers={"mcp-session-id": sid})
    assert resp.status_code in (400, 413)
    garbage = post(server, connector, content=b"{not json", headers={"mcp-session-id": sid})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700
    wrong_type = post(server, connector, content=b"x", headers={"mcp-session-id": sid, "content-type": "text/plain"})
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(
    "path", ["/api/v1/proxy/not-a-uuid/mcp", "/api/v1/proxy/00000000-0000-0000-0000-000000000000/mcp"]
)
def test_unknown_connector_is_404(server, path):
    resp = httpx.post(
        server.url + path, json=INIT, headers={"x-runlayer-api-key": server.keys["alice"], "accept": ACCEPT}
    )
    assert resp.status_code == 404


def test_get_stream_is_not_offered_and_delete_ends_cleanly(server, connector):
    sid = open_session(server, connector)
    headers = {"x-runlayer-api-key": server.keys["alice"], "mcp-session-id": sid, "accept": "text/event-stream"}
    assert httpx.get(server.mcp_url(connector), headers=headers).status_code == 405
    assert httpx.delete(server.mcp_url(connector), headers=headers).status_code == 200
