"""Device login (`runlayer login`): every state of a code, through the real views."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from runlayer.models import ApiKey, DeviceAuthorization

pytestmark = pytest.mark.django_db


def _start(client: Client, **body) -> dict:
    resp = client.post("/api/v1/cli/device/authorize", body or None, content_type="application/json")
    assert resp.status_code == 200, resp.content
    return resp.json()


def _poll(client: Client, device_code: str):
    return client.post("/api/v1/cli/device/token", {"device_code": device_code}, content_type="application/json")


def _backdate_poll(device_code_grant: dict) -> None:
    DeviceAuthorization.objects.filter(user_code=device_code_grant["user_code"]).update(
        last_polled_at=timezone.now() - timedelta(seconds=60)
    )


def test_approve_then_token_gives_a_named_revocable_key(user, settings):
    settings.PUBLIC_URL = "http://testserver"
    cli = Client()
    grant = _start(cli, device_name="laptop-7")
    assert grant["verification_uri"] == "http://testserver/device"
    assert grant["verification_uri_complete"].endswith(f"?code={grant['user_code']}")
    assert grant["expires_in"] > 0 and grant["interval"] >= 1
    assert _poll(cli, grant["device_code"]).json() == {"detail": "authorization_pending"}
    slow = _poll(cli, grant["device_code"])
    assert slow.status_code == 202 and slow.json() == {"detail": "slow_down"}

    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/device?code={grant['user_code'].replace('-', '').lower()}")
    assert page.status_code == 200 and b"laptop-7" in page.content and b"Approve" in page.content
    done = browser.post("/device", {"code": grant["user_code"], "decision": "approve"})
    assert done.status_code == 200 and b"Approved" in done.content

    _backdate_poll(grant)
    token = _poll(cli, grant["device_code"])
    assert token.status_code == 200
    key = token.json()["api_key"]
    assert key.startswith("rl_")
    api_key = ApiKey.objects.get(user=user)
    assert api_key.name == "CLI on laptop-7" and api_key.is_active
    me = Client(HTTP_X_RUNLAYER_API_KEY=key).get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["username"] == user.username
    again = _poll(cli, grant["device_code"])
    assert again.status_code == 400 and "already" in again.json()["detail"]
    assert AuditEvent.objects.filter(action_type="api_key_created", actor_id=user.id).exists()


def test_denied_expired_unknown_and_bad_input(user):
    cli = Client()
    browser = Client()
    browser.force_login(user)

    denied = _start(cli)
    browser.post("/device", {"code": denied["user_code"], "decision": "deny"})
    resp = _poll(cli, denied["device_code"])
    assert resp.status_code == 403 and resp.json()["detail"].startswith("access_denied")
    assert AuditEvent.objects.filter(action_type="auth_failed", actor_id=user.id).exists()
    reused = browser.post("/device", {"code": denied["user_code"], "decision": "approve"})
    assert reused.status_code == 409 and b"already used" in reused.content

    expired = _start(cli)
    DeviceAuthorization.objects.filter(user_code=expired["user_code"]).update(expires_at=timezone.now())
    resp = _poll(cli, expired["device_code"])
    assert resp.status_code == 400 and resp.json()["detail"].startswith("expired_token")
    late = browser.post("/device", {"code": expired["user_code"], "decision": "approve"})
    assert late.status_code == 410

    assert _poll(cli, "rldc_unknown").status_code == 400
    assert _poll(cli, 12).status_code == 400
    bad = cli.post("/api/v1/cli/device/token", "{nope", content_type="application/json")
    assert bad.status_code == 400 and "device_code" in bad.json()["detail"]
    assert cli.post("/api/v1/cli/device/authorize", "[1]", content_type="application/json").status_code == 400
    assert cli.get("/api/v1/cli/device/authorize").status_code == 405
    missing = browser.get("/device?code=ZZZZ-ZZZZ")
    assert b"No pending login" in missing.content
    assert not ApiKey.objects.exists()


def test_the_approval_page_needs_a_signed_in_user_and_csrf(user):
    cli = Client()
    grant = _start(cli)
    anonymous = Client().get(f"/device?code={grant['user_code']}")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    forged = strict.post("/device", {"code": grant["user_code"], "decision": "approve"})
    assert forged.status_code == 403
    assert DeviceAuthorization.objects.get(user_code=grant["user_code"]).status == "pending"


def test_device_logins_are_listed_read_only_in_the_admin(admin_user):
    Client().post("/api/v1/cli/device/authorize", {"device_name": "ci-box"}, content_type="application/json")
    browser = Client()
    browser.force_login(admin_user)
    page = browser.get("/admin/runlayer/deviceauthorization/")
    assert page.status_code == 200 and b"ci-box" in page.content
    assert browser.get("/admin/runlayer/deviceauthorization/add/").status_code == 403
