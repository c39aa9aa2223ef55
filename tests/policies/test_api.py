from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from policies.models import Policy
from tests.factories import ConnectorFactory, GroupFactory

pytestmark = pytest.mark.django_db


def test_admin_creates_policies_and_tests_decisions(client_for, admin_user, user):
    connector = ConnectorFactory()
    connector.users.add(user)
    client = client_for(admin_user)
    resp = client.post(
        "/api/v1/policies",
        {
            "name": "No deletes",
            "effect": "deny",
            "connector": str(connector.id),
            "everyone": True,
            "tools": ["delete_*"],
            "description": "deleting is done by humans",
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    policy_id = resp.json()["id"]
    test = client.post(
        "/api/v1/policies/test",
        {"user": user.username, "connector": str(connector.id), "name": "delete_repo", "arguments": {"x": 1}},
        format="json",
    ).json()
    assert test == {
        "allowed": False,
        "reason": "denied by policy 'No deletes': deleting is done by humans",
        "rule": f"policy:{policy_id}",
    }
    ok = client.post(
        "/api/v1/policies/test", {"user": str(user.pk), "connector": str(connector.id), "name": "read"}, format="json"
    ).json()
    assert ok["allowed"] is True and ok["rule"] == "assignment"
    assert client.patch(f"/api/v1/policies/{policy_id}", {"enabled": False}, format="json").json()["enabled"] is False
    assert client.get("/api/v1/policies?effect=deny").json()["count"] == 1
    assert client.delete(f"/api/v1/policies/{policy_id}").status_code == 204


@pytest.mark.parametrize(
    "body,words",
    [
        ({"name": "g", "effect": "allow", "everyone": True}, "can only deny"),
        ({"name": "c", "effect": "deny", "conditions": [{"path": "a", "op": "like", "value": 1}]}, "unknown operator"),
        (
            {"name": "r", "effect": "deny", "conditions": [{"path": "a", "op": "matches", "value": "(x"}]},
            "regular expression",
        ),
        ({"name": "i", "effect": "deny", "ip_ranges": ["300.1.1.1"]}, "not an IP address"),
        ({"name": "u", "effect": "deny", "users": ["ghost"]}, "ghost"),
        ({"name": "", "effect": "deny"}, "name"),
        ({"name": "e", "effect": "maybe"}, "effect"),
    ],
)
def test_bad_policies_get_a_clear_400(client_for, admin_user, body, words):
    resp = client_for(admin_user).post("/api/v1/policies", body, format="json")
    assert resp.status_code == 400
    assert words in str(resp.json())
    assert not Policy.objects.exists()


def test_only_admins_manage_policies(client_for, user):
    client = client_for(user)
    assert client.get("/api/v1/policies").status_code == 403
    assert client.post("/api/v1/policies", {"name": "x", "effect": "deny"}, format="json").status_code == 403
    assert client.post("/api/v1/policies/test", {}, format="json").status_code == 403


def test_policy_test_bad_input(client_for, admin_user):
    client = client_for(admin_user)
    assert (
        client.post(
            "/api/v1/policies/test",
            {"user": "ghost", "connector": "00000000-0000-0000-0000-000000000000"},
            format="json",
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/v1/policies/test", {"user": admin_user.username, "connector": "nope"}, format="json"
        ).status_code
        == 400
    )


def test_admin_pages_and_actions(client, admin_user):
    client.force_login(admin_user)
    connector = ConnectorFactory()
    GroupFactory(name="eng")
    resp = client.post(
        reverse("admin:policies_policy_add"),
        {
            "name": "Block evil client",
            "effect": "deny",
            "enabled": "on",
            "everyone": "on",
            "connector": "",
            "tools": "[]",
            "resources": "[]",
            "prompts": "[]",
            "conditions": "[]",
            "client_names": '["evil-*"]',
            "ip_ranges": "[]",
            "description": "",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    policy = Policy.objects.get(name="Block evil client")
    assert policy.connector is None and policy.client_names == ["evil-*"]
    bad = client.post(
        reverse("admin:policies_policy_add"),
        {
            "name": "bad",
            "effect": "allow",
            "connector": "",
            "tools": "[]",
            "resources": "[]",
            "prompts": "[]",
            "conditions": "[]",
            "client_names": "[]",
            "ip_ranges": "[]",
        },
    )
    assert bad.status_code == 200 and "can only deny" in bad.content.decode()
    resp = client.post(
        reverse("admin:policies_policy_changelist"), {"action": "disable", "_selected_action": [policy.pk]}, follow=True
    )
    assert "1 policy(ies) disabled." in [str(m) for m in get_messages(resp.wsgi_request)]
    assert client.get(reverse("admin:policies_policy_change", args=[policy.pk])).status_code == 200
    assert (
        client.get(reverse("admin:policies_policy_changelist") + f"?connector__id__exact={connector.pk}").status_code
        == 200
    )


def test_guard_settings_api(client_for, admin_user, user):
    from policies.cache import current_rules

    connector = ConnectorFactory()
    client = client_for(admin_user)
    assert client_for(user).get("/api/v1/guard-settings").status_code == 403
    created = client.post("/api/v1/guard-settings", {"secrets_action": "block"}, format="json")
    assert created.status_code == 201 and created.json()["connector"] is None
    dup = client.post("/api/v1/guard-settings", {"pii_action": "mask"}, format="json")
    assert dup.status_code == 400 and "exist already" in dup.json()["detail"]
    bad = client.post(
        "/api/v1/guard-settings", {"connector": str(connector.id), "injection_action": "mask"}, format="json"
    )
    assert bad.status_code == 400 and "only secrets and PII" in bad.json()["detail"]
    override = client.post(
        "/api/v1/guard-settings", {"connector": str(connector.id), "secrets_action": "allow"}, format="json"
    )
    assert override.status_code == 201
    from policies.cache import compile_rules

    rules = compile_rules(version=-1)
    assert rules.guard_default["secrets"] == "block" and rules.guard_actions(str(connector.id))["secrets"] == "allow"
    assert current_rules() is not None
