"""Capability sync against the real demo MCP server, started in its own process."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from connectors.capabilities import CapabilityFetchError
from connectors.models import ConnectorCapability
from connectors.services import connector_sync_capabilities
from connectors.tasks import sync_capabilities
from tests.factories import ConnectorFactory, LocalConnectorFactory
from tests.support import demo_server, free_port

pytestmark = [pytest.mark.django_db]

DEMO_TOOLS = {"echo", "count", "add", "sleep_ms", "fail", "read_env"}


@pytest.mark.parametrize(
    "transport,json_response,stateless",
    [
        ("streamable-http", False, False),  # SSE-framed responses, sessions
        ("streamable-http", True, False),  # JSON responses
        ("streamable-http", True, True),  # stateless server: the 2026-07-28 era path
        ("sse", False, False),  # the legacy HTTP+SSE transport
    ],
)
def test_sync_reads_tools_resources_and_prompts(admin_user, transport, json_response, stateless):
    with demo_server(transport=transport, json_response=json_response, stateless=stateless) as url:
        connector = ConnectorFactory(url=url, transport="sse" if transport == "sse" else "streaming-http")
        changes = connector_sync_capabilities(connector=connector, actor=admin_user)
    caps = ConnectorCapability.objects.filter(connector=connector)
    assert {c.name for c in caps.filter(kind="tool")} == DEMO_TOOLS
    assert {c.name for c in caps.filter(kind="resource")} == {"demo://readme"}
    assert {c.name for c in caps.filter(kind="resource_template")} == {"demo://greeting/{name}"}
    assert {c.name for c in caps.filter(kind="prompt")} == {"summarize"}
    echo = caps.get(kind="tool", name="echo").definition
    assert echo["inputSchema"]["properties"]["text"]["type"] == "string"  # wire shape, camelCase
    assert len(changes.added) == 9
    event = AuditEvent.objects.get(action_type="server_capabilities_synced")
    assert event.actor == admin_user and len(event.details["added"]) == 9


def test_resync_of_unchanged_server_reports_no_change(admin_user):
    with demo_server(json_response=True) as url:
        connector = ConnectorFactory(url=url)
        connector_sync_capabilities(connector=connector, actor=admin_user)
        again = connector_sync_capabilities(connector=connector, actor=admin_user)
    assert again.as_dict() == {"added": [], "changed": [], "removed": []}


def test_unreachable_server_gives_a_clean_error_and_keeps_it():
    connector = ConnectorFactory(url=f"http://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(CapabilityFetchError) as info:
        connector_sync_capabilities(connector=connector)
    assert "could not be reached" in str(info.value)
    connector.refresh_from_db()
    assert "could not be reached" in connector.last_sync_error
    assert not ConnectorCapability.objects.exists()


def test_local_connectors_are_not_synced_by_the_server():
    with pytest.raises(CapabilityFetchError):
        connector_sync_capabilities(connector=LocalConnectorFactory())


def test_celery_task_syncs(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with demo_server(json_response=True) as url:
        connector = ConnectorFactory(url=url)
        result = sync_capabilities.apply(args=[str(connector.id)]).get()
    assert "tool:echo" in result["added"]
    assert ConnectorCapability.objects.filter(connector=connector, kind="tool").count() == len(DEMO_TOOLS)
