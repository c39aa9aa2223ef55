from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from audit.models import AuditEvent
from connectors.capabilities import CapabilitySet, definition_hash
from connectors.models import Connector, ConnectorCapability
from connectors.selectors import connector_is_assigned, connectors_visible_to
from connectors.services import (
    catalog_entry_instantiate,
    connector_create,
    connector_delete,
    connector_set_access,
    connector_set_status,
    connector_store_capabilities,
    connector_update,
)
from tests.factories import CatalogEntryFactory, ConnectorFactory, GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action_type", flat=True))


def test_create_validates_audits_and_slugs(admin_user):
    a = connector_create(
        actor=admin_user, name="My Server", deployment_mode="hosted", transport="sse", url="https://x.example/sse"
    )
    b = connector_create(
        actor=admin_user, name="My Server", deployment_mode="hosted", transport="sse", url="https://y.example/sse"
    )
    assert (a.slug, b.slug) == ("my-server", "my-server-2")
    assert a.owner == admin_user and a.version == 1 and a.status == "draft"
    assert actions() == ["server_created", "server_created"]
    event = AuditEvent.objects.first()
    assert event.actor_email == admin_user.email and event.server_name == "My Server"


def test_create_refuses_bad_config_and_writes_nothing(admin_user):
    with pytest.raises(ValidationError):
        connector_create(actor=admin_user, name="x", deployment_mode="local", transport="stdio", url="")
    assert Connector.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_version_bumps_only_on_runtime_changes(admin_user):
    c = ConnectorFactory()
    c = connector_update(connector=c, actor=admin_user, description="new words")
    assert c.version == 1
    c = connector_update(connector=c, actor=admin_user, url="http://127.0.0.1:10/mcp")
    assert c.version == 2
    c = connector_update(connector=c, actor=admin_user, headers={"Authorization": "Bearer s3cret"})
    assert c.version == 3
    c = connector_update(connector=c, actor=admin_user, headers={"Authorization": "Bearer s3cret"})
    assert c.version == 3  # no change, no bump, no event
    updates = AuditEvent.objects.filter(action_type="server_updated")
    assert updates.count() == 3
    # header values never appear in the audit trail
    assert all("s3cret" not in str(e.details) for e in AuditEvent.objects.all())


def test_headers_are_encrypted_at_rest(admin_user):
    c = connector_create(
        actor=admin_user,
        name="Secretive",
        deployment_mode="hosted",
        transport="streaming-http",
        url="https://x.example/mcp",
        headers={"Authorization": "Bearer topsecret-value"},
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT headers FROM connectors_connector WHERE id = %s",
            [c.id.hex if connection.vendor == "sqlite" else c.id],
        )
        raw = cursor.fetchone()[0]
    assert "topsecret-value" not in raw and "Authorization" not in raw
    assert Connector.objects.get(pk=c.pk).headers == {"Authorization": "Bearer topsecret-value"}


def test_status_changes_are_audited(admin_user):
    c = ConnectorFactory(status="draft")
    connector_set_status(connector=c, actor=admin_user, status="active")
    connector_set_status(connector=Connector.objects.get(pk=c.pk), actor=admin_user, status="disabled")
    assert "server_enabled" in actions() and "server_disabled" in actions()


def test_delete_is_audited(admin_user):
    c = ConnectorFactory()
    connector_id, name = c.id, c.name
    connector_delete(connector=c, actor=admin_user)
    assert not Connector.objects.exists()
    event = AuditEvent.objects.get(action_type="server_deleted")
    assert event.server_id == connector_id and event.server_name == name


def test_access_by_user_and_group(admin_user):
    c = ConnectorFactory()
    alice, bob, carol = UserFactory(username="alice"), UserFactory(username="bob"), UserFactory(username="carol")
    team = GroupFactory(name="team")
    carol.groups.add(team)
    connector_set_access(connector=c, actor=admin_user, users=["alice", str(bob.pk)], groups=["team"])
    assert connector_is_assigned(alice, c) and connector_is_assigned(bob, c) and connector_is_assigned(carol, c)
    assert list(connectors_visible_to(carol)) == [c]
    outsider = UserFactory(username="dave")
    assert not connector_is_assigned(outsider, c)
    assert list(connectors_visible_to(outsider)) == []
    event = AuditEvent.objects.get(action_type="server_access_changed")
    assert (event.details["users"], event.details["groups"]) == (["alice", "bob"], ["team"])


def test_access_with_unknown_principal_is_refused(admin_user):
    c = ConnectorFactory()
    with pytest.raises(ValidationError) as info:
        connector_set_access(connector=c, actor=admin_user, users=["nobody"])
    assert "nobody" in str(info.value)


def test_disabled_connectors_are_not_accessible(admin_user):
    user = UserFactory()
    c = ConnectorFactory(status="disabled")
    c.users.add(user)
    assert list(connectors_visible_to(user)) == []
    assert list(connectors_visible_to(admin_user, scope="all")) == [c]
    assert list(connectors_visible_to(admin_user)) == []


def test_catalog_instantiate_copies_the_template(admin_user):
    entry = CatalogEntryFactory(url="uvx", args=["mcp-server-time"], inherit_env=["TZ"])
    c = catalog_entry_instantiate(entry=entry, actor=admin_user)
    assert (c.url, c.args, c.inherit_env, c.catalog_entry, c.status) == (
        "uvx",
        ["mcp-server-time"],
        ["TZ"],
        entry,
        "draft",
    )


def test_store_capabilities_hashes_and_reports_changes():
    c = ConnectorFactory()
    tool = {"name": "echo", "description": "Echo", "inputSchema": {"type": "object", "properties": {}}}
    first = connector_store_capabilities(connector=c, capabilities=CapabilitySet(tools={"echo": tool}))
    assert first.added == ["tool:echo"]
    stored = ConnectorCapability.objects.get(connector=c)
    assert stored.definition_hash == definition_hash(tool)
    # key order and whitespace do not change the hash
    reordered = {"inputSchema": {"properties": {}, "type": "object"}, "description": "Echo", "name": "echo"}
    assert definition_hash(reordered) == stored.definition_hash
    second = connector_store_capabilities(
        connector=c,
        capabilities=CapabilitySet(
            tools={"echo": {**tool, "description": "Echo!"}},
            prompts={"p": {"name": "p"}},
        ),
    )
    assert second.changed == ["tool:echo"] and second.added == ["prompt:p"] and second.removed == []
    third = connector_store_capabilities(connector=c, capabilities=CapabilitySet())
    assert sorted(third.removed) == ["prompt:p", "tool:echo"]
    c.refresh_from_db()
    assert c.capabilities_version == c.version and not c.sync_required
