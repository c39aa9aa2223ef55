from __future__ import annotations

import threading

import pytest

from audit.models import AuditEvent
from audit.services import audit_event_build
from audit.writer import AuditWriter

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_submits_all_land_once():
    writer = AuditWriter(batch_size=50, interval=0.01)

    def produce(n: int, tag: str) -> None:
        for i in range(n):
            writer.submit(audit_event_build(action_type="tool_call_success", resource_name=f"{tag}-{i}"))

    threads = [threading.Thread(target=produce, args=(250, f"t{k}")) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert AuditEvent.objects.count() == 2000
    assert AuditEvent.objects.values("resource_name").distinct().count() == 2000
    assert writer.pending == 0 and writer.written == 2000


def test_close_flushes_what_is_buffered():
    writer = AuditWriter(batch_size=10_000, interval=60)  # would otherwise wait a minute
    for i in range(7):
        writer.submit(audit_event_build(action_type="tools_list", resource_name=str(i)))
    writer.close(timeout=10)
    assert AuditEvent.objects.filter(action_type="tools_list").count() == 7


def test_memory_is_bounded_by_back_pressure():
    writer = AuditWriter(batch_size=5, interval=0.001, max_pending=10)
    peak = 0
    for i in range(300):
        writer.submit(audit_event_build(action_type="tools_list", resource_name=str(i)))
        peak = max(peak, len(writer._pending))
    writer.close()
    assert peak <= 10
    assert AuditEvent.objects.count() == 300
