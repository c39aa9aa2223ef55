from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest

from audit.models import AuditEvent
from connectors.models import Connector
from tests.factories import CatalogEntryFactory, ConnectorFactory, GroupFactory, LocalConnectorFactory
from tests.support import demo_server

pytestmark = pytest.mark.django_db

NEW_SERVER = {
    "name": "Search",
    "description": "Web search",
    "deployment_mode": "hosted",
    "transport_type": "streaming-http",
    "url": "https://search.example.com/mcp",
    "transport_config": {"headers": {"Authorization": "Bearer upstream-secret"}, "env": {}, "args": []},
    "status": "active",
}


def test_list_shape_scope_and_paging(client_for, user, admin_user):
    mine = [ConnectorFactory(name=f"S{i}") for i in range(3)]
    for c in mine:
        c.users.add(user)
    ConnectorFactory(name="Not assigned")
    resp = client_for(user).get("/api/v1/servers?scope=accessible&limit=2&skip=1")
    assert resp.status_code == 200
    body = resp.json()
    assert body["count"] == 3 and [s["name"] for s in body["data"]] == ["S1", "S2"]
    item = body["data"][0]
    for field in ("id", "name", "description", "status", "icon_url", "is_official", "deployment_mode"):
        assert field in item
    assert item["transport_config"] is None  # transport details are for admins
    admin_body = client_for(admin_user).get("/api/v1/servers?scope=all").json()
    assert admin_body["count"] == 4


def test_bad_query_parameters_get_400(client_for, user):
    client = client_for(user)
    assert client.get("/api/v1/servers?limit=abc").status_code == 400
    assert client.get("/api/v1/servers?limit=-1").status_code == 400
    assert client.get("/api/v1/servers?limit=5000").status_code == 400
    resp = client.get("/api/v1/servers?scope=everything")
    assert resp.status_code == 400 and "scope" in resp.json()["detail"]


def test_unauthenticated_gets_401_with_resource_metadata(client):
    resp = client.get("/api/v1/servers")
    assert resp.status_code == 401
    assert "resource_metadata=" in resp["WWW-Authenticate"]
    assert client.get("/api/v1/servers", HTTP_X_RUNLAYER_API_KEY="rl_nope").status_code == 401


def test_token_in_query_string_is_refused(client_for, user):
    key = client_for(user).api_key
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v1/servers?access_token={key}").status_code == 401


def test_admin_creates_and_headers_are_write_only(client_for, admin_user):
    client = client_for(admin_user)
    resp = client.post("/api/v1/servers", NEW_SERVER, format="json")
    assert resp.status_code == 201, resp.json()
    created = resp.json()
    assert created["transport_config"]["headers"] == {"Authorization": "********"}
    assert "upstream-secret" not in json.dumps(created)
    connector = Connector.objects.get(pk=created["id"])
    assert connector.headers == {"Authorization": "Bearer upstream-secret"}
    assert created["proxy_url"].endswith(f"/api/v1/proxy/{connector.id}/mcp")
    assert AuditEvent.objects.filter(action_type="server_created", server_id=connector.id).exists()

    # PATCH with the masked value keeps the secret; the change of URL bumps the version
    resp = client.patch(
        f"/api/v1/servers/{connector.id}",
        {"url": "https://search2.example.com/mcp", "transport_config": {"headers": {"Authorization": "********"}}},
        format="json",
    )
    assert resp.status_code == 200 and resp.json()["version"] == 2
    connector.refresh_from_db()
    assert connector.headers == {"Authorization": "Bearer upstream-secret"}


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"deployment_mode": "local", "transport_type": "stdio", "url": ""}, "url"),
        ({"transport_type": "carrier-pigeon"}, "transport_type"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"transport_config": {"args": "rm -rf /"}}, "transport_config"),
        ({"transport_config": {"env": {"BAD NAME": "x"}}}, "env"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_gets_a_clear_400(client_for, admin_user, patch, field):
    resp = client_for(admin_user).post("/api/v1/servers", {**NEW_SERVER, **patch}, format="json")
    assert resp.status_code == 400
    assert field in json.dumps(resp.json())
    assert Connector.objects.count() == 0


def test_malformed_json_gets_400(client_for, admin_user):
    resp = client_for(admin_user).generic("POST", "/api/v1/servers", "{not json", content_type="application/json")
    assert resp.status_code == 400 and "detail" in resp.json()


def test_non_admin_cannot_create_change_or_delete(client_for, user):
    connector = ConnectorFactory()
    connector.users.add(user)
    client = client_for(user)
    assert client.post("/api/v1/servers", NEW_SERVER, format="json").status_code == 403
    assert client.patch(f"/api/v1/servers/{connector.id}", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/servers/{connector.id}").status_code == 403
    assert (
        client.put(f"/api/v1/servers/{connector.id}/access", {"users": [user.username]}, format="json").status_code
        == 403
    )
    assert Connector.objects.get(pk=connector.pk).name == connector.name


def test_outsider_cannot_see_an_unassigned_connector(client_for, outsider):
    connector = ConnectorFactory()
    client = client_for(outsider)
    assert client.get(f"/api/v1/servers/{connector.id}").status_code == 404
    assert client.get(f"/api/v1/servers/{connector.id}/install").status_code == 404
    assert client.get(f"/api/v1/servers/{connector.id}/capabilities").status_code == 404
    assert client.get("/api/v1/servers").json()["count"] == 0


def test_unknown_id_gets_404_not_500(client_for, admin_user):
    client = client_for(admin_user)
    assert client.get("/api/v1/servers/not-a-uuid").status_code == 404
    assert client.get("/api/v1/servers/00000000-0000-0000-0000-000000000000").status_code == 404


def test_delete(client_for, admin_user):
    connector = ConnectorFactory()
    assert client_for(admin_user).delete(f"/api/v1/servers/{connector.id}").status_code == 204
    assert not Connector.objects.exists()
    assert AuditEvent.objects.filter(action_type="server_deleted").count() == 1


def test_put_access_sets_users_and_groups(client_for, admin_user, user):
    connector = ConnectorFactory()
    GroupFactory(name="eng")
    client = client_for(admin_user)
    resp = client.put(
        f"/api/v1/servers/{connector.id}/access", {"users": [user.username], "groups": ["eng"]}, format="json"
    )
    assert resp.status_code == 200
    assert resp.json() == {"users": [user.username], "groups": ["eng"]}
    assert client_for(user).get(f"/api/v1/servers/{connector.id}").status_code == 200
    resp = client.put(f"/api/v1/servers/{connector.id}/access", {"users": ["ghost"]}, format="json")
    assert resp.status_code == 400 and "ghost" in resp.json()["detail"]
    resp = client.put(f"/api/v1/servers/{connector.id}/access", {}, format="json")
    assert resp.status_code == 400
    # removing the user takes the connector away
    client.put(f"/api/v1/servers/{connector.id}/access", {"users": []}, format="json")
    assert client_for(user).get(f"/api/v1/servers/{connector.id}").status_code == 404


def test_install_material_hosted(client_for, user):
    connector = ConnectorFactory(slug="search")
    connector.users.add(user)
    body = client_for(user).get(f"/api/v1/servers/{connector.id}/install").json()
    proxy = f"http://127.0.0.1:8000/api/v1/proxy/{connector.id}/mcp"
    assert body["proxy_url"] == proxy
    cursor = body["clients"]["cursor"]
    assert cursor["config"]["mcpServers"]["search"]["url"] == proxy
    link = urlparse(cursor["deeplink"])
    assert link.scheme == "cursor"
    config = json.loads(base64.b64decode(parse_qs(link.query)["config"][0]))
    assert config["url"] == proxy and "x-runlayer-api-key" in config["headers"]
    assert body["clients"]["vscode"]["config"]["servers"]["search"]["type"] == "http"
    assert body["clients"]["vscode"]["deeplink"].startswith("vscode:mcp/install?")
    assert body["clients"]["claude_code"]["config"]["mcpServers"]["search"]["url"] == proxy


def test_install_material_local(client_for, user):
    connector = LocalConnectorFactory(slug="demo-local")
    connector.users.add(user)
    body = client_for(user).get(f"/api/v1/servers/{connector.id}/install").json()
    entry = body["clients"]["claude_desktop"]["config"]["mcpServers"]["demo-local"]
    assert entry == {"command": "runlayer", "args": ["run", str(connector.id), "--host", "http://127.0.0.1:8000"]}
    assert body["proxy_url"] is None


def test_catalog_list_and_instantiate(client_for, admin_user, user):
    entry = CatalogEntryFactory(name="Time", slug="time")
    body = client_for(user).get("/api/v1/catalog").json()
    assert body["count"] == 1 and body["data"][0]["slug"] == "time"
    assert client_for(user).post(f"/api/v1/catalog/{entry.id}/instantiate", {}, format="json").status_code == 403
    resp = client_for(admin_user).post(f"/api/v1/catalog/{entry.id}/instantiate", {"name": "My time"}, format="json")
    assert resp.status_code == 201 and resp.json()["name"] == "My time" and resp.json()["catalog_entry_name"] == "Time"


def test_sync_endpoint_against_real_server(client_for, admin_user, user):
    with demo_server(json_response=True) as url:
        connector = ConnectorFactory(url=url)
        connector.users.add(user)
        assert client_for(user).post(f"/api/v1/servers/{connector.id}/sync").status_code == 403
        resp = client_for(admin_user).post(f"/api/v1/servers/{connector.id}/sync")
    assert resp.status_code == 200 and "tool:echo" in resp.json()["added"]
    caps = client_for(user).get(f"/api/v1/servers/{connector.id}/capabilities").json()
    assert {c["name"] for c in caps if c["kind"] == "tool"} >= {"echo", "add"}
    # upstream gone: a clean 502 with a message, not a 500
    resp = client_for(admin_user).post(f"/api/v1/servers/{connector.id}/sync")
    assert resp.status_code == 502 and "could not be reached" in resp.json()["detail"]


def test_schema_and_docs_are_served(client):
    resp = client.get("/api/v1/schema/")
    assert resp.status_code == 200
    assert b"/api/v1/servers" in resp.content
    assert client.get("/api/v1/docs/").status_code == 200


def test_schema_validates_without_warnings():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "/api/v1/servers/{id}/access" in out.getvalue()


def test_proxy_tools_lists_what_the_caller_may_use(client_for, user, outsider):
    from connectors.capabilities import CapabilitySet
    from connectors.services import connector_store_capabilities

    connector = ConnectorFactory()
    connector.users.add(user)
    connector_store_capabilities(
        connector=connector,
        capabilities=CapabilitySet(tools={"b": {"name": "b", "description": "Bee"}, "a": {"name": "a"}}),
    )
    resp = client_for(user).get(f"/api/v1/proxy/{connector.id}/tools")
    assert resp.status_code == 200
    assert resp.json() == [{"name": "a", "description": ""}, {"name": "b", "description": "Bee"}]
    assert client_for(outsider).get(f"/api/v1/proxy/{connector.id}/tools").status_code == 404
