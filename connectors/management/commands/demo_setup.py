"""Load the demo: an admin (credentials printed), a user, the catalog and connectors backed by the demo server.

Idempotent: running it again refreshes the demo objects and keeps the admin's password.
"""

from __future__ import annotations

import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from connectors.capabilities import CapabilityFetchError
from connectors.catalog import catalog_seed
from connectors.models import CatalogEntry, Connector, ConnectorStatus, DeploymentMode, Transport
from connectors.services import (
    catalog_entry_instantiate,
    connector_create,
    connector_set_access,
    connector_sync_capabilities,
)

DEMO_SERVER = settings.BASE_DIR / "connectors" / "demo_server.py"


class Command(BaseCommand):
    help = "Create the demo admin and user, the catalog, and demo connectors (hosted and local)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--demo-url", default="http://127.0.0.1:8765/mcp", help="the hosted demo server")
        parser.add_argument("--demo-sse-url", default="http://127.0.0.1:8766/sse", help="the SSE demo server")
        parser.add_argument("--no-sync", action="store_true", help="do not read capabilities from the demo servers")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        password_file = settings.DATA_DIR / "demo-admin-password"
        with transaction.atomic():
            admin = User.objects.filter(username="admin").first()
            if admin is None or not password_file.exists():
                password = secrets.token_urlsafe(12)
                admin = admin or User(username="admin", email="admin@example.com", first_name="Demo", last_name="Admin")
                admin.is_staff = admin.is_superuser = True
                admin.set_password(password)
                admin.save()
                password_file.write_text(password)
                password_file.chmod(0o600)
            password = password_file.read_text().strip()

            alice, created = User.objects.get_or_create(
                username="alice", defaults={"email": "alice@example.com", "first_name": "Alice", "last_name": "Demo"}
            )
            if created:
                alice.set_unusable_password()
                alice.save()
            engineering, _ = Group.objects.get_or_create(name="engineering")
            alice.groups.add(engineering)

            count = catalog_seed()
            demos = [
                dict(
                    name="Demo (hosted)",
                    description="The demo MCP server over streamable HTTP, reached through the gateway.",
                    deployment_mode=DeploymentMode.HOSTED,
                    transport=Transport.STREAMING_HTTP,
                    url=options["demo_url"],
                ),
                dict(
                    name="Demo SSE (hosted)",
                    description="The demo MCP server over the legacy SSE transport.",
                    deployment_mode=DeploymentMode.HOSTED,
                    transport=Transport.SSE,
                    url=options["demo_sse_url"],
                ),
                dict(
                    name="Demo (local)",
                    description="The demo MCP server launched on your machine by `runlayer run`.",
                    deployment_mode=DeploymentMode.LOCAL,
                    transport=Transport.STDIO,
                    url=sys.executable,
                    args=[str(DEMO_SERVER)],
                ),
            ]
            connectors = []
            for spec in demos:
                connector = Connector.objects.filter(name=spec["name"]).first()
                if connector is None:
                    connector = connector_create(actor=admin, status=ConnectorStatus.ACTIVE, **spec)
                connectors.append(connector)
            time_entry = CatalogEntry.objects.get(slug="mcp-server-time")
            if not Connector.objects.filter(catalog_entry=time_entry).exists():
                connectors.append(
                    catalog_entry_instantiate(entry=time_entry, actor=admin, status=ConnectorStatus.ACTIVE)
                )
            for connector in connectors:
                connector_set_access(connector=connector, actor=admin, groups=[engineering.name])

        if not options["no_sync"]:
            for connector in Connector.objects.filter(deployment_mode=DeploymentMode.HOSTED, name__startswith="Demo"):
                try:
                    changes = connector_sync_capabilities(connector=connector, actor=admin)
                    self.stdout.write(f"synced {connector.name}: {len(changes.added)} new capabilities")
                except CapabilityFetchError as exc:
                    self.stdout.write(f"could not sync {connector.name} yet: {exc}")

        self.stdout.write(f"catalog: {count} entries; demo connectors: {len(connectors)}")
        self.stdout.write(
            self.style.SUCCESS(f"Demo admin: username 'admin', password '{password}'  →  {settings.PUBLIC_URL}/admin/")
        )
