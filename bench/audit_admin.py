"""The read-only audit admin at scale: time to render the changelist (plain, filtered, searched) over N events.

    .venv/bin/python bench/audit_admin.py [--events 1000000]

Uses its own database in a temporary data directory (SQLite unless DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ["RUNLAYER_DATA_DIR"] = tempfile.mkdtemp(prefix="runlayer-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runlayer.settings")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.utils import timezone

    from audit.models import AuditEvent

    call_command("migrate", verbosity=0)
    admin = User.objects.create_superuser("bench", "bench@example.com", "x")
    server_ids = [str(__import__("uuid").uuid4()) for _ in range(20)]
    actions = ["tool_call_success", "tool_call_failure", "tools_list", "access_denied"]
    start = time.perf_counter()
    now = timezone.now()
    batch = []
    for i in range(args.events):
        batch.append(
            AuditEvent(
                timestamp=now,
                action_type=actions[i % 4],
                actor_id=admin.pk,
                actor_email="bench@example.com",
                server_id=server_ids[i % 20],
                server_name=f"server {i % 20}",
                resource_name=f"tool_{i % 100}",
                correlation_id=f"{i:032x}",
                details={"i": i},
            )
        )
        if len(batch) == 20_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    print(f"inserted {args.events} events in {time.perf_counter() - start:.1f} s ({connection.vendor})")

    client = Client()
    client.force_login(admin)
    from django.conf import settings

    settings.DEBUG = True  # to count queries
    for label, url in [
        ("changelist", "/admin/audit/auditevent/"),
        ("page 100", "/admin/audit/auditevent/?p=100"),
        ("filter action", "/admin/audit/auditevent/?action_type__exact=access_denied"),
        ("filter server", f"/admin/audit/auditevent/?server_id={server_ids[3]}"),
        ("search correlation", f"/admin/audit/auditevent/?q={12345:032x}"),
        (
            "detail",
            f"/admin/audit/auditevent/{AuditEvent.objects.order_by('-id').values_list('id', flat=True)[0]}/change/",
        ),
    ]:
        client.get(url)  # warm
        reset_queries()
        t = time.perf_counter()
        resp = client.get(url)
        elapsed = (time.perf_counter() - t) * 1000
        print(f"  {label:20} {resp.status_code}  {elapsed:8.1f} ms  {len(connection.queries)} queries")


if __name__ == "__main__":
    main()
