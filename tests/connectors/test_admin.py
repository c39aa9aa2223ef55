from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import audit_record
from connectors.models import Connector, ConnectorCapability
from runlayer.models import ApiKey
from runlayer.services import api_key_create
from tests.factories import CatalogEntryFactory, ConnectorFactory, LocalConnectorFactory, UserFactory
from tests.support import demo_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "model",
    [
        "connectors/connector",
        "connectors/catalogentry",
        "connectors/connectorcapability",
        "runlayer/apikey",
        "audit/auditevent",
    ],
)
def test_changelists_render(admin_client, model):
    ConnectorFactory()
    CatalogEntryFactory()
    audit_record(action_type="tool_call_success")
    resp = admin_client.get(f"/admin/{model}/?q=x")
    assert resp.status_code == 200


def test_non_staff_cannot_use_the_admin(client, user):
    client.force_login(user)
    resp = client.get("/admin/connectors/connector/")
    assert resp.status_code == 302 and "/admin/login/" in resp["Location"]


def test_connector_page_shows_capabilities_and_install_snippets(admin_client):
    with demo_server(json_response=True) as url:
        connector = ConnectorFactory(url=url)
        resp = admin_client.post(
            reverse("admin:connectors_connector_changelist"),
            {"action": "sync_capabilities", "_selected_action": [str(connector.pk)]},
            follow=True,
        )
    assert "1 connector(s) synced." in messages_of(resp)
    page = admin_client.get(reverse("admin:connectors_connector_change", args=[connector.pk]))
    html = page.content.decode()
    assert "Echo the given text back." in html
    assert f"/api/v1/proxy/{connector.id}/mcp" in html
    assert "cursor://anysphere.cursor-deeplink/mcp/install" in html


def test_actions_report_counts_and_audit(admin_client):
    a, b = ConnectorFactory(status="draft"), ConnectorFactory(status="draft")
    local = LocalConnectorFactory()
    url = reverse("admin:connectors_connector_changelist")
    resp = admin_client.post(url, {"action": "activate", "_selected_action": [a.pk, b.pk]}, follow=True)
    assert "2 connector(s) activated." in messages_of(resp)
    assert set(Connector.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)) == {"active"}
    resp = admin_client.post(url, {"action": "disable", "_selected_action": [a.pk]}, follow=True)
    assert "1 connector(s) disabled." in messages_of(resp)
    assert AuditEvent.objects.filter(action_type="server_enabled").count() == 2
    assert AuditEvent.objects.filter(action_type="server_disabled").count() == 1
    resp = admin_client.post(url, {"action": "sync_capabilities", "_selected_action": [local.pk, a.pk]}, follow=True)
    text = " ".join(messages_of(resp))
    assert "1 local connector(s) skipped" in text and "Sync failed for" in text and "could not be reached" in text


def test_add_connector_through_the_admin_form(admin_client, user):
    resp = admin_client.post(
        reverse("admin:connectors_connector_add"),
        {
            "name": "Hosted one",
            "description": "",
            "icon_url": "",
            "status": "active",
            "deployment_mode": "hosted",
            "transport": "streaming-http",
            "url": "https://mcp.example.com/mcp",
            "args": "[]",
            "env": "{}",
            "headers_input": '{"Authorization": "Bearer abc"}',
            "inherit_env": "[]",
            "users": [user.pk],
            "capabilities-TOTAL_FORMS": "0",
            "capabilities-INITIAL_FORMS": "0",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:3000]
    connector = Connector.objects.get(name="Hosted one")
    assert connector.headers == {"Authorization": "Bearer abc"}
    assert list(connector.users.all()) == [user]
    assert AuditEvent.objects.filter(action_type="server_created", server_id=connector.id).exists()
    # the change form never shows the secret
    page = admin_client.get(reverse("admin:connectors_connector_change", args=[connector.pk])).content.decode()
    assert "Bearer abc" not in page and "********" in page


def test_admin_form_shows_validation_errors(admin_client):
    resp = admin_client.post(
        reverse("admin:connectors_connector_add"),
        {
            "name": "Local bad",
            "status": "draft",
            "deployment_mode": "local",
            "transport": "streaming-http",
            "url": "http://10.1.2.3:9000/mcp",
            "args": "[]",
            "env": "{}",
            "headers_input": "",
            "inherit_env": "[]",
            "capabilities-TOTAL_FORMS": "0",
            "capabilities-INITIAL_FORMS": "0",
        },
    )
    assert resp.status_code == 200
    assert "must listen on loopback" in resp.content.decode()
    assert not Connector.objects.exists()


def test_catalog_instantiate_action(admin_client):
    entry = CatalogEntryFactory()
    resp = admin_client.post(
        reverse("admin:connectors_catalogentry_changelist"),
        {"action": "instantiate", "_selected_action": [entry.pk]},
        follow=True,
    )
    assert "1 draft connector(s) created." in messages_of(resp)
    assert Connector.objects.get(catalog_entry=entry).status == "draft"


def test_api_key_admin_shows_key_once_and_revokes(admin_client):
    owner = UserFactory(username="owner")
    resp = admin_client.post(
        reverse("admin:runlayer_apikey_add"), {"user": owner.pk, "name": "from-admin"}, follow=True
    )
    text = " ".join(messages_of(resp))
    assert "rl_" in text
    api_key = ApiKey.objects.get(name="from-admin")
    second = api_key_create(user=owner, name="other").api_key
    resp = admin_client.post(
        reverse("admin:runlayer_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk, second.pk]},
        follow=True,
    )
    assert "2 API key(s) revoked." in messages_of(resp)
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0


def test_audit_admin_is_read_only(admin_client):
    event = audit_record(action_type="tool_call_success", details={"tool": "echo"})
    change = admin_client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert change.status_code == 200 and b"echo" in change.content
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_capability_admin_is_read_only(admin_client):
    connector = ConnectorFactory()
    cap = ConnectorCapability.objects.create(
        connector=connector,
        kind="tool",
        name="t",
        definition={"name": "t"},
        definition_hash="0" * 64,
        synced_at="2026-01-01T00:00:00Z",
    )
    assert admin_client.get(reverse("admin:connectors_connectorcapability_change", args=[cap.pk])).status_code == 200
    assert admin_client.get(reverse("admin:connectors_connectorcapability_add")).status_code == 403
