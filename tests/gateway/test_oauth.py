"""OAuth for MCP clients: discovery, dynamic registration, authorization code + PKCE, then the gateway."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlparse

import anyio
import httpx

from .conftest import mcp_client

REDIRECT = "http://127.0.0.1:33418/callback"


def sign_in(server, username: str) -> httpx.Client:
    browser = httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)
    page = browser.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    resp = browser.post(
        "/accounts/login/",
        data={"username": username, "password": f"pw-{username}", "csrfmiddlewaretoken": token, "next": "/admin/"},
    )
    assert resp.status_code == 302, resp.text[:500]
    return browser


def obtain_token(server, username: str) -> str:
    # 1. discovery, as an MCP client does after a 401
    challenge = httpx.post(f"{server.url}/api/v1/proxy/00000000-0000-0000-0000-000000000001/mcp", json={}).headers[
        "www-authenticate"
    ]
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)
    resource = httpx.get(metadata_url).json()
    auth_server = httpx.get(f"{resource['authorization_servers'][0]}/.well-known/oauth-authorization-server").json()
    token_url = auth_server["token_endpoint"].replace(resource["authorization_servers"][0], server.url)
    # 2. dynamic client registration
    client = httpx.post(
        f"{server.url}/api/v1/oauth/register",
        json={
            "client_name": "test-client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "response_types": ["code"],
        },
    ).json()
    # 3. authorization code with PKCE, approved by the signed-in user
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "mcp",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser = sign_in(server, username)
    form = browser.get("/api/v1/oauth/authorize/", params=params)
    assert form.status_code == 200, form.text[:500]
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.text))
    fields.update({"allow": "Authorize"})
    approved = browser.post("/api/v1/oauth/authorize/", data=fields)
    assert approved.status_code == 302, approved.text[:1000]
    code = parse_qs(urlparse(approved.headers["location"]).query)["code"][0]
    token = httpx.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client["client_id"],
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["expires_in"] <= 3600
    return body["access_token"]


def test_oauth_token_works_at_the_gateway_and_revocation_is_immediate(server, connector):
    access_token = obtain_token(server, "alice")

    async def scenario():
        async with mcp_client(
            server.mcp_url(connector), None, headers={"authorization": f"Bearer {access_token}"}
        ) as client:
            result = await client.session.call_tool("add", {"a": 20, "b": 22})
            assert result.content[0].text == "42"

    anyio.run(scenario)
    events = server.audit(action_type="tool_call_success", server_id=connector, wait_for=1)
    assert events[0]["actor_info"]["email"] == "alice@example.com"
    assert access_token not in str(events)

    # the same token for a user without the connector is refused; a revoked token fails at once
    revoke = httpx.post(
        f"{server.url}/api/v1/oauth/revoke",
        data={"token": access_token, "client_id": _client_id_of(server, access_token)},
    )
    assert revoke.status_code == 200
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    resp = httpx.post(
        server.mcp_url(connector),
        json=init,
        headers={"authorization": f"Bearer {access_token}", "accept": "application/json, text/event-stream"},
    )
    assert resp.status_code == 401


def _client_id_of(server, access_token: str) -> str:
    import subprocess
    import sys

    from tests.support import ROOT

    script = (
        "import hashlib; from oauth2_provider.models import AccessToken;"
        f"t = AccessToken.objects.get(token_checksum=hashlib.sha256({access_token!r}.encode()).hexdigest());"
        "print('CID', t.application.client_id)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("CID ", 1)[1].split()[0]
