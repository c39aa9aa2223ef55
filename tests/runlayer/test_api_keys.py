from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from runlayer.crypto import hash_token
from runlayer.models import ApiKey
from runlayer.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_key_is_hashed_and_shown_once(user):
    new = api_key_create(user=user, name="laptop")
    assert new.key.startswith("rl_") and len(new.key) > 40
    stored = ApiKey.objects.get(pk=new.api_key.pk)
    assert stored.key_hash == hash_token(new.key) and stored.prefix == new.key[:10]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM runlayer_apikey")
        rows = cursor.fetchall()
    assert new.key not in repr(rows)
    assert AuditEvent.objects.filter(action_type="api_key_created").count() == 1


def test_both_headers_authenticate_and_usage_is_recorded(user):
    key = api_key_create(user=user, name="k").key
    for kwargs in ({"HTTP_X_RUNLAYER_API_KEY": key}, {"HTTP_AUTHORIZATION": f"Bearer {key}"}):
        resp = APIClient().get("/api/v1/users/me", **kwargs)
        assert resp.status_code == 200
        assert resp.json()["username"] == user.username and resp.json()["is_admin"] is False
    api_key = ApiKey.objects.get(user=user)
    assert api_key.last_used_at is not None and api_key.last_used_ip == "127.0.0.1"


def test_revoked_key_fails_on_next_call(user):
    new = api_key_create(user=user, name="k")
    client = APIClient(HTTP_X_RUNLAYER_API_KEY=new.key)
    assert client.get("/api/v1/users/me").status_code == 200
    api_key_revoke(api_key=new.api_key, actor=user)
    resp = client.get("/api/v1/users/me")
    assert resp.status_code == 401 and "WWW-Authenticate" in resp


def test_expired_key_and_inactive_user_fail(user):
    expired = api_key_create(user=user, name="old", expires_at=timezone.now() - timedelta(seconds=1))
    assert APIClient(HTTP_X_RUNLAYER_API_KEY=expired.key).get("/api/v1/users/me").status_code == 401
    good = api_key_create(user=user, name="new")
    user.is_active = False
    user.save()
    assert APIClient(HTTP_X_RUNLAYER_API_KEY=good.key).get("/api/v1/users/me").status_code == 401


def test_api_create_list_revoke(client_for, user):
    client = client_for(user)
    resp = client.post("/api/v1/api-keys", {"name": "ci"}, format="json")
    assert resp.status_code == 201
    created = resp.json()
    assert created["key"].startswith("rl_")
    listing = client.get("/api/v1/api-keys").json()
    assert listing["count"] == 2  # the client's own key and the new one
    assert all("key" not in item and "key_hash" not in item for item in listing["data"])
    assert client.delete(f"/api/v1/api-keys/{created['id']}").status_code == 204
    assert APIClient(HTTP_X_RUNLAYER_API_KEY=created["key"]).get("/api/v1/users/me").status_code == 401
    assert AuditEvent.objects.filter(action_type="api_key_revoked", actor=user).count() == 1


def test_api_key_bad_input(client_for, user):
    client = client_for(user)
    assert client.post("/api/v1/api-keys", {"name": ""}, format="json").status_code == 400
    assert client.post("/api/v1/api-keys", {"name": "x" * 101}, format="json").status_code == 400
    past = (timezone.now() - timedelta(days=1)).isoformat()
    assert client.post("/api/v1/api-keys", {"name": "x", "expires_at": past}, format="json").status_code == 400


def test_outsider_cannot_see_or_revoke_anothers_key(client_for, user, outsider):
    victim = api_key_create(user=user, name="victim")
    client = client_for(outsider)
    assert client.get(f"/api/v1/api-keys/{victim.api_key.id}").status_code == 404
    assert client.delete(f"/api/v1/api-keys/{victim.api_key.id}").status_code == 404
    assert ApiKey.objects.get(pk=victim.api_key.pk).revoked_at is None
    assert all(item["name"] != "victim" for item in client.get("/api/v1/api-keys").json()["data"])


def test_management_command_prints_only_the_key(user):
    out = StringIO()
    call_command("apikey", "create", "--user", user.username, "--name", "script", stdout=out)
    key = out.getvalue().strip()
    assert key.startswith("rl_") and "\n" not in key
    assert APIClient(HTTP_X_RUNLAYER_API_KEY=key).get("/api/v1/users/me").status_code == 200

    out = StringIO()
    call_command("apikey", "list", "--user", user.username, stdout=out)
    assert "script" in out.getvalue() and key not in out.getvalue()

    prefix = ApiKey.objects.get(name="script").prefix
    call_command("apikey", "revoke", prefix, stdout=StringIO())
    assert APIClient(HTTP_X_RUNLAYER_API_KEY=key).get("/api/v1/users/me").status_code == 401


def test_management_command_errors_are_clear(db):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("apikey", "create", "--user", "ghost")
    with pytest.raises(CommandError, match="no API key"):
        call_command("apikey", "revoke", "rl_nothing")
