from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AppendOnlyError, AuditEvent
from audit.services import audit_record
from tests.factories import ConnectorFactory

pytestmark = pytest.mark.django_db


def test_events_are_append_only(user):
    event = audit_record(action_type="tool_call_success", actor=user)
    event.details = {"changed": True}
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_non_admins_see_only_their_own(client_for, user, outsider, admin_user):
    audit_record(action_type="tool_call_success", actor=user, resource_name="echo")
    audit_record(action_type="tool_call_success", actor=outsider, resource_name="secret-tool")
    body = client_for(outsider).get("/api/v1/auditlogs?action_type=tool_call_success").json()
    assert [e["resource_info"]["name"] for e in body["data"]] == ["secret-tool"]
    # asking for someone else's events does not widen the view
    body = client_for(outsider).get(f"/api/v1/auditlogs?user_id={user.pk}").json()
    assert body["count"] == 0
    mine = AuditEvent.objects.get(actor=user, resource_name="echo")
    assert client_for(outsider).get(f"/api/v1/auditlogs/{mine.id}").status_code == 404
    admin_view = client_for(admin_user).get(f"/api/v1/auditlogs?user_id={user.pk}&action_type=tool_call_success").json()
    assert admin_view["count"] == 1


def test_filters_shape_and_order(client_for, admin_user, user):
    connector = ConnectorFactory()
    old = audit_record(action_type="access_denied", actor=user, server=connector, client_name="cursor")
    AuditEvent.objects.filter(pk=old.pk).update(timestamp=timezone.now() - timedelta(days=3))
    audit_record(
        action_type="tool_call_failure",
        actor=user,
        server=connector,
        client_name="claude-code",
        correlation_id="abc123",
        details={"reason": "upstream timeout"},
    )
    audit_record(action_type="tool_call_success", actor=user)
    client = client_for(admin_user)
    body = client.get("/api/v1/auditlogs?action_type=access_denied,tool_call_failure").json()
    assert body["count"] == 2
    assert [e["action_type"] for e in body["data"]] == ["tool_call_failure", "access_denied"]  # newest first
    event = body["data"][0]
    assert event["actor_info"]["email"] == user.email
    assert event["details"]["server_name"] == connector.name
    assert event["details"]["correlation_id"] == "abc123" and event["details"]["client_name"] == "claude-code"
    assert client.get(f"/api/v1/auditlogs?server_id={connector.id}").json()["count"] == 2
    assert client.get("/api/v1/auditlogs?client_name=cursor").json()["count"] == 1
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert client.get("/api/v1/auditlogs", {"start_date": since, "action_type": "access_denied"}).json()["count"] == 0
    assert client.get("/api/v1/auditlogs?limit=1").json()["count"] >= 3
    assert len(client.get("/api/v1/auditlogs?limit=1").json()["data"]) == 1


@pytest.mark.parametrize(
    "query", ["start_date=yesterday", "server_id=not-a-uuid", "limit=2001", "user_id=abc", "skip=-4"]
)
def test_bad_filters_get_400(client_for, admin_user, query):
    resp = client_for(admin_user).get(f"/api/v1/auditlogs?{query}")
    assert resp.status_code == 400
    assert resp.json()["detail"]


def test_anonymous_is_refused(client):
    assert client.get("/api/v1/auditlogs").status_code == 401
