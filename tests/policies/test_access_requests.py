from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from connectors.selectors import connector_is_assigned, principal_of
from policies.access_requests import (
    access_request_approve,
    access_request_create,
    access_request_reject,
    access_request_withdraw,
)
from policies.cache import current_rules
from policies.engine import CallContext, decide
from policies.models import AccessRequest, WebhookDelivery, WebhookEndpoint
from tests.factories import AdminFactory, ConnectorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RUNLAYER_WEBHOOK_RETRY_BASE_SECONDS = 0
    from runlayer.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def actions() -> list[str]:
    return list(
        AuditEvent.objects.filter(resource_type="access_request").order_by("id").values_list("action_type", flat=True)
    )


def test_approve_grants_the_connector_in_the_same_transaction(django_capture_on_commit_callbacks, admin_user):
    user, connector = UserFactory(email="u@example.com"), ConnectorFactory()
    with django_capture_on_commit_callbacks(execute=True):
        request = access_request_create(requester=user, connector=connector, reason="I need to read the wiki")
    assert request.state == "pending" and not connector_is_assigned(user, connector)
    with django_capture_on_commit_callbacks(execute=True):
        approved = access_request_approve(request=request, actor=admin_user, note="ok")
    assert approved.state == "approved" and approved.decided_by == admin_user and connector_is_assigned(user, connector)
    assert actions() == ["access_request_created", "access_request_approved"]
    assert [m.subject for m in mail.outbox] == [
        f"[Runlayer] {user.username} asks for {connector.name}",
        f"[Runlayer] Your request for {connector.name} was approved",
    ]
    assert mail.outbox[0].to == [admin_user.email] and mail.outbox[1].to == ["u@example.com"]


def test_approval_of_specific_tools_grants_only_those(django_capture_on_commit_callbacks, admin_user):
    user, connector = UserFactory(), ConnectorFactory()
    request = access_request_create(requester=user, connector=connector, reason="search only", tools=["search"])
    with django_capture_on_commit_callbacks(execute=True):
        approved = access_request_approve(request=request, actor=admin_user)
    assert approved.granted_policy is not None and not connector_is_assigned(user, connector)

    def may(name):
        ctx = CallContext(principal=principal_of(user), connector_id=str(connector.id), method="tools/call", name=name)
        return decide(current_rules(), ctx).allowed

    assert may("search") and not may("delete")


def test_every_state_transition():
    admin, user, connector = AdminFactory(), UserFactory(), ConnectorFactory()
    rejected = access_request_reject(
        request=access_request_create(requester=user, connector=connector, reason="r"), actor=admin, note="no"
    )
    assert rejected.state == "rejected" and rejected.decision_note == "no"
    withdrawn = access_request_withdraw(
        request=access_request_create(requester=user, connector=connector, reason="r"), actor=user
    )
    assert withdrawn.state == "withdrawn"
    approved = access_request_approve(
        request=access_request_create(requester=user, connector=connector, reason="r"), actor=admin
    )
    for fn in (access_request_approve, access_request_reject):
        for done in (rejected, withdrawn, approved):
            with pytest.raises(ValidationError, match="already"):
                fn(request=done, actor=admin)
    with pytest.raises(ValidationError, match="already"):
        access_request_withdraw(request=rejected, actor=user)
    assert actions() == [
        "access_request_created",
        "access_request_rejected",
        "access_request_created",
        "access_request_withdrawn",
        "access_request_created",
        "access_request_approved",
    ]


def test_duplicates_and_bad_requests_are_refused():
    user, other, connector = UserFactory(), UserFactory(), ConnectorFactory()
    access_request_create(requester=user, connector=connector, reason="first")
    with pytest.raises(ValidationError, match="pending request"):
        access_request_create(requester=user, connector=connector, reason="second")
    with pytest.raises(ValidationError, match="why"):
        access_request_create(requester=other, connector=connector, reason="  ")
    connector.users.add(other)
    with pytest.raises(ValidationError, match="already have access"):
        access_request_create(requester=other, connector=connector, reason="again")
    request = AccessRequest.objects.get(requester=user)
    with pytest.raises(ValidationError, match="only the requester"):
        access_request_withdraw(request=request, actor=other)


def test_api_flow_with_outsider(client_for, admin_user, user, outsider):
    connector = ConnectorFactory()
    mine = client_for(user)
    resp = mine.post(
        "/api/v1/access-requests", {"connector": str(connector.id), "reason": "for the report"}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    request_id = resp.json()["id"]
    again = mine.post("/api/v1/access-requests", {"connector": str(connector.id), "reason": "again"}, format="json")
    assert again.status_code == 400 and "pending" in again.json()["detail"]
    assert mine.post("/api/v1/access-requests", {"connector": "nope", "reason": "x"}, format="json").status_code == 400
    other = client_for(outsider)
    assert other.get(f"/api/v1/access-requests/{request_id}").status_code == 404
    assert other.post(f"/api/v1/access-requests/{request_id}/withdraw").status_code == 404
    assert other.post(f"/api/v1/access-requests/{request_id}/approve", {}, format="json").status_code == 403
    assert mine.post(f"/api/v1/access-requests/{request_id}/approve", {}, format="json").status_code == 403
    admin = client_for(admin_user)
    assert admin.get("/api/v1/access-requests?state=pending").json()["count"] == 1
    approved = admin.post(f"/api/v1/access-requests/{request_id}/approve", {"note": "go"}, format="json")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert admin.post(f"/api/v1/access-requests/{request_id}/reject", {}, format="json").status_code == 400
    assert mine.get(f"/api/v1/servers/{connector.id}").status_code == 200


def test_admin_bulk_actions(client, admin_user):
    client.force_login(admin_user)
    connector = ConnectorFactory()
    requests = [access_request_create(requester=UserFactory(), connector=connector, reason="r") for _ in range(3)]
    access_request_reject(request=requests[2], actor=admin_user)
    resp = client.post(
        reverse("admin:policies_accessrequest_changelist"),
        {"action": "approve", "_selected_action": [r.pk for r in requests]},
        follow=True,
    )
    texts = [str(m) for m in get_messages(resp.wsgi_request)]
    assert "2 request(s) approved." in texts and "1 request(s) skipped: not pending." in texts
    assert client.get(reverse("admin:policies_accessrequest_changelist") + "?state__exact=pending").status_code == 200


class Receiver(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.received.append((dict(self.headers), body))
        status = 500 if Receiver.fail_first > 0 else 204
        Receiver.fail_first -= 1
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_signed_webhooks_with_retries_and_a_delivery_log(django_capture_on_commit_callbacks, admin_user):
    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Receiver.received, Receiver.fail_first = [], 2
    try:
        endpoint = WebhookEndpoint.objects.create(
            name="ops",
            url=f"http://127.0.0.1:{httpd.server_port}/hook",
            secret="s3cret",
            events=["access_request_created"],
        )
        with django_capture_on_commit_callbacks(execute=True):
            request = access_request_create(requester=UserFactory(), connector=ConnectorFactory(), reason="pls")
        with django_capture_on_commit_callbacks(execute=True):
            access_request_reject(request=request, actor=admin_user)  # not subscribed: no delivery
    finally:
        httpd.shutdown()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "delivered" and delivery.attempts == 3 and delivery.response_code == 204
    assert len(Receiver.received) == 3
    headers, body = Receiver.received[-1]
    headers = {k.lower(): v for k, v in headers.items()}
    expected = hmac.new(b"s3cret", headers["x-runlayer-timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-runlayer-signature"] == f"sha256={expected}"
    assert json.loads(body)["access_request"]["id"] == str(request.id)


def test_admin_can_file_a_request_for_a_user(client, admin_user):
    client.force_login(admin_user)
    requester, connector = UserFactory(), ConnectorFactory()
    resp = client.post(
        reverse("admin:policies_accessrequest_add"),
        {"requester": requester.pk, "connector": connector.pk, "tools": "[]", "reason": "asked on the phone"},
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    request = AccessRequest.objects.get(requester=requester)
    assert request.state == "pending" and actions() == ["access_request_created"]
    duplicate = client.post(
        reverse("admin:policies_accessrequest_add"),
        {"requester": requester.pk, "connector": connector.pk, "tools": "[]", "reason": "again"},
    )
    assert duplicate.status_code == 200 and "pending request" in duplicate.content.decode()
    assert AccessRequest.objects.filter(requester=requester).count() == 1
