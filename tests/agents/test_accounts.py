"""Agent accounts end to end inside Django: API, client-credentials tokens, on-behalf-of token exchange,
what the gateway's identity makes of each token, policies naming agents, the admin."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.test import Client

from agents.models import AgentAccount
from audit.models import AuditEvent
from connectors.gateway.identity import _load
from runlayer.services import api_key_create

pytestmark = pytest.mark.django_db


def _token(client_id: str, secret: str, **form) -> object:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return Client().post("/api/v1/oauth/token", form, HTTP_AUTHORIZATION=f"Basic {basic}")


def _identity(token: str):
    return _load(hashlib.sha256(token.encode()).hexdigest(), False)


@pytest.fixture(autouse=True)
def keep_test_connection(monkeypatch):
    """The gateway's loader closes stale connections (it runs outside requests); here that would close the
    test's own transaction on PostgreSQL."""
    monkeypatch.setattr("connectors.gateway.identity.close_old_connections", lambda: None)


@pytest.fixture
def agent(client_for, admin_user):
    resp = client_for(admin_user).post("/api/v1/agent-accounts", {"name": "ci-bot"}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["client_secret"] and body["enabled"] is True
    return body


def test_only_admins_manage_agent_accounts(client_for, user, admin_user, agent):
    assert client_for(user).get("/api/v1/agent-accounts").status_code == 403
    assert client_for(user).post("/api/v1/agent-accounts", {"name": "x"}, format="json").status_code == 403
    admin = client_for(admin_user)
    listed = admin.get("/api/v1/agent-accounts").json()
    assert [a["name"] for a in listed["data"]] == ["ci-bot"] and "client_secret" not in listed["data"][0]
    dup = admin.post("/api/v1/agent-accounts", {"name": "ci-bot"}, format="json")
    assert dup.status_code == 400 and "already exists" in str(dup.json())
    assert admin.post("/api/v1/agent-accounts", {"name": ""}, format="json").status_code == 400
    assert AuditEvent.objects.filter(action_type="agent_account_created").count() == 1


def test_client_credentials_token_is_the_agents_own(agent):
    resp = _token(agent["client_id"], agent["client_secret"], grant_type="client_credentials")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    identity = _identity(body["access_token"])
    assert identity.principal.user_id is None and identity.principal.agent_id == agent["id"]
    assert identity.display_name == "ci-bot"


def test_wrong_secrets_and_user_keys_cannot_mint_tokens(agent, user):
    assert _token(agent["client_id"], "wrong", grant_type="client_credentials").status_code == 401
    key = api_key_create(user=user, name="k").key
    assert _token(agent["client_id"], key, grant_type="client_credentials").status_code == 401
    exchange = _token(
        user.username, key, grant_type="urn:ietf:params:oauth:grant-type:token-exchange", subject_token=key,
        subject_token_type="urn:ietf:params:oauth:token-type:access_token",
    )  # fmt: skip
    assert exchange.status_code == 401 and exchange.json()["error"] == "invalid_client"
    assert _token(agent["client_id"], agent["client_secret"], grant_type="password").status_code in (400, 401)


def test_disabling_refuses_new_tokens_and_stops_existing_ones(client_for, admin_user, agent):
    token = _token(agent["client_id"], agent["client_secret"], grant_type="client_credentials").json()["access_token"]
    resp = client_for(admin_user).patch(f"/api/v1/agent-accounts/{agent['id']}", {"enabled": False}, format="json")
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    refused = _token(agent["client_id"], agent["client_secret"], grant_type="client_credentials")
    assert refused.status_code == 401 and "disabled" in refused.json()["error_description"]
    assert _identity(token) is None
    assert AuditEvent.objects.filter(action_type="agent_account_disabled").exists()


def test_token_exchange_needs_an_active_delegation(client_for, user, agent):
    key = api_key_create(user=user, name="k").key
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": key,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }
    refused = _token(agent["client_id"], agent["client_secret"], **form)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(action_type="agent_account_token_exchange_denied").exists()

    me = client_for(user)
    delegated = me.post("/api/v1/delegations", {"agent": "ci-bot"}, format="json")
    assert delegated.status_code == 201
    issued = _token(agent["client_id"], agent["client_secret"], **form)
    assert issued.status_code == 200, issued.content
    body = issued.json()
    assert body["issued_token_type"] == form["subject_token_type"] and body["expires_in"] <= 3600
    identity = _identity(body["access_token"])
    assert identity.principal.user_id == user.pk and identity.principal.agent_id == agent["id"]
    assert AuditEvent.objects.filter(action_type="agent_account_token_exchange_success").exists()

    bad_type = _token(agent["client_id"], agent["client_secret"], **{**form, "subject_token_type": "x"})
    assert bad_type.status_code == 400 and bad_type.json()["error"] == "invalid_request"
    agent_token = _token(agent["client_id"], agent["client_secret"], grant_type="client_credentials").json()
    as_subject = _token(
        agent["client_id"], agent["client_secret"], **{**form, "subject_token": agent_token["access_token"]}
    )
    assert as_subject.status_code == 400  # an agent's own token is not a user's

    assert me.delete(f"/api/v1/delegations/{delegated.json()['id']}").status_code == 204
    assert _identity(body["access_token"]) is None  # revoking the delegation ends the on-behalf-of token
    assert _token(agent["client_id"], agent["client_secret"], **form).status_code == 400


def test_delegations_are_private(client_for, user, outsider, agent):
    mine = client_for(user).post("/api/v1/delegations", {"agent": "ci-bot"}, format="json").json()
    other = client_for(outsider)
    assert other.get("/api/v1/delegations").json()["count"] == 0
    assert other.delete(f"/api/v1/delegations/{mine['id']}").status_code == 404
    assert client_for(user).post("/api/v1/delegations", {"agent": "ghost"}, format="json").status_code == 400


def test_policies_name_agents(client_for, admin_user, agent):
    from tests.factories import ConnectorFactory

    connector = ConnectorFactory()
    admin = client_for(admin_user)
    body = {"name": "bot may search", "effect": "allow", "connector": str(connector.id), "agents": ["ci-bot"],
            "tools": ["search"]}  # fmt: skip
    created = admin.post("/api/v1/policies", body, format="json")
    assert created.status_code == 201, created.content and created.json()["agents"] == ["ci-bot"]
    unknown = admin.post("/api/v1/policies", {**body, "agents": ["nobody"]}, format="json")
    assert unknown.status_code == 400
    from policies.cache import compile_rules

    rules = compile_rules(version=-1)
    compiled = rules.connectors[str(connector.id)].policies[0]
    assert compiled.agent_ids == frozenset({agent["id"]})


def test_admin_creates_an_agent_and_shows_the_secret_once(admin_user):
    browser = Client()
    browser.force_login(admin_user)
    resp = browser.post("/admin/agents/agentaccount/add/", {"name": "from-admin", "description": ""}, follow=True)
    assert resp.status_code == 200 and b"client secret" in resp.content
    account = AgentAccount.objects.get(name="from-admin")
    assert account.application.authorization_grant_type == "client-credentials"
    assert browser.get("/admin/agents/agentaccount/").status_code == 200
    assert browser.get("/admin/agents/delegation/").status_code == 200


def test_the_policy_test_endpoint_explains_agents(client_for, admin_user, user, agent):
    from tests.factories import ConnectorFactory

    connector = ConnectorFactory()
    admin = client_for(admin_user)
    body = {"name": "bot", "effect": "allow", "connector": str(connector.id), "agents": ["ci-bot"]}
    assert admin.post("/api/v1/policies", body, format="json").status_code == 201
    ask = {"connector": str(connector.id), "name": "search"}
    as_agent = admin.post("/api/v1/policies/test", {**ask, "agent": "ci-bot"}, format="json").json()
    assert as_agent["allowed"] is True and as_agent["rule"].startswith("policy:")
    for_user = admin.post("/api/v1/policies/test", {**ask, "agent": "ci-bot", "user": user.username}, format="json")
    assert for_user.json()["allowed"] is False and "(for the user)" in for_user.json()["reason"]
    assert admin.post("/api/v1/policies/test", ask, format="json").status_code == 400
    assert admin.post("/api/v1/policies/test", {**ask, "agent": "nope"}, format="json").status_code == 400
