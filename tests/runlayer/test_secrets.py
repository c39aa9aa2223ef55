from __future__ import annotations

import pytest
from django.db import connection

from runlayer.models import UserSecret
from runlayer.secrets import MissingSecret, resolve_headers, secret_names_in, user_secret_set, user_secrets_of

pytestmark = pytest.mark.django_db


def test_placeholders_resolve_per_user():
    headers = {"Authorization": "Bearer {{ user.secret.GH_TOKEN }}", "X-Team": "{{user.secret.TEAM}}", "X-Plain": "v"}
    assert secret_names_in(headers) == {"GH_TOKEN", "TEAM"}
    resolved = resolve_headers(headers, {"GH_TOKEN": "ghp_abc", "TEAM": "blue"})
    assert resolved == {"Authorization": "Bearer ghp_abc", "X-Team": "blue", "X-Plain": "v"}


def test_missing_secret_is_a_clear_error_naming_it():
    with pytest.raises(MissingSecret) as info:
        resolve_headers({"Authorization": "Bearer {{ user.secret.GH_TOKEN }}"}, {})
    assert info.value.name == "GH_TOKEN" and "GH_TOKEN" in str(info.value)


def test_values_are_encrypted_at_rest(user):
    user_secret_set(user=user, name="GH_TOKEN", value="ghp_supersecret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM runlayer_usersecret")
        raw = cursor.fetchone()[0]
    assert "ghp_supersecret" not in raw
    assert user_secrets_of(user.pk) == {"GH_TOKEN": "ghp_supersecret"}


def test_api_is_write_only_and_per_user(client_for, user, outsider):
    client = client_for(user)
    resp = client.put("/api/v1/secrets/GH_TOKEN", {"value": "ghp_1"}, format="json")
    assert resp.status_code == 200 and "value" not in resp.json()
    listing = client.get("/api/v1/secrets").json()
    assert [s["name"] for s in listing["data"]] == ["GH_TOKEN"] and "ghp_1" not in str(listing)
    # another user neither sees nor deletes it, and can have their own of the same name
    other = client_for(outsider)
    assert other.get("/api/v1/secrets").json()["count"] == 0
    assert other.delete("/api/v1/secrets/GH_TOKEN").status_code == 404
    assert other.put("/api/v1/secrets/GH_TOKEN", {"value": "mine"}, format="json").status_code == 200
    assert user_secrets_of(user.pk) == {"GH_TOKEN": "ghp_1"}
    assert client.delete("/api/v1/secrets/GH_TOKEN").status_code == 204
    assert not UserSecret.objects.filter(user=user).exists()


def test_bad_secret_input_gets_400(client_for, user):
    client = client_for(user)
    assert client.put("/api/v1/secrets/GH_TOKEN", {"value": ""}, format="json").status_code == 400
    assert client.put("/api/v1/secrets/GH_TOKEN", {"value": "a\nb"}, format="json").status_code == 400
    assert client.put("/api/v1/secrets/GH_TOKEN", {}, format="json").status_code == 400
    assert client.put("/api/v1/secrets/1BAD", {"value": "x"}, format="json").status_code == 404
