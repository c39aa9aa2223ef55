"""The batched audit writer: takes events off the request path and inserts them in bulk.

``submit()`` costs an append to a buffer; it takes an unsaved ``AuditEvent`` or a dict of its field
values (the gateway's hot path passes dicts: the model instances are built on the writer's thread).
A background thread inserts what has accumulated every ``interval`` seconds, or as soon as
``batch_size`` events are waiting, with one ``bulk_create``. Memory is bounded: when ``max_pending``
events are waiting, ``submit()`` blocks until the writer catches up (back-pressure, never loss). A failed
insert is retried with backoff; the events stay buffered meanwhile. ``close()`` (called at ASGI shutdown
and at interpreter exit) flushes everything that was submitted.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque

from django.db import close_old_connections, connection

from .models import AuditEvent

logger = logging.getLogger(__name__)


class AuditWriter:
    def __init__(self, *, batch_size: int = 500, interval: float = 0.05, max_pending: int = 50_000) -> None:
        self.batch_size = batch_size
        self.interval = interval
        self.max_pending = max_pending
        self._pending: deque[AuditEvent | dict] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._in_flight = 0
        self.written = 0

    # -- producer side -------------------------------------------------------------------------
    def submit(self, event: AuditEvent | dict) -> None:
        with self._cond:
            self._ensure_thread()
            while len(self._pending) >= self.max_pending and not self._closing:
                self._cond.notify_all()
                self._cond.wait(timeout=1.0)
            self._pending.append(event)
            if len(self._pending) >= self.batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is in the database. True when it all got there."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._thread is None and self._pending:
                self._ensure_thread()
            self._cond.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=min(remaining, 0.05))
                self._cond.notify_all()
        return True

    def close(self, timeout: float = 30.0) -> None:
        ok = self.flush(timeout=timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if not ok:
            logger.error("audit writer closed with %d events not written", len(self._pending))
        with self._cond:
            self._closing = False

    @property
    def pending(self) -> int:
        return len(self._pending) + self._in_flight

    # -- writer thread -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def _take_batch(self) -> list[AuditEvent | dict]:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait(timeout=self.interval)
            if not self._pending:
                return []
            if len(self._pending) < self.batch_size and not self._closing:
                # let a burst accumulate a little, unless someone is waiting for a flush
                self._cond.wait(timeout=self.interval)
            batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        try:
            while True:
                batch = self._take_batch()
                if not batch:
                    if self._closing:
                        return
                    continue
                self._write(batch)
                with self._cond:
                    self._in_flight = 0
                    self.written += len(batch)
                    self._cond.notify_all()
        finally:
            connection.close()

    def _write(self, items: list[AuditEvent | dict]) -> None:
        batch = [AuditEvent(**item) if isinstance(item, dict) else item for item in items]
        delay = 0.05
        while True:
            try:
                close_old_connections()
                AuditEvent.objects.bulk_create(batch, batch_size=self.batch_size)
                return
            except Exception:
                logger.exception("audit write of %d events failed; retrying in %.2f s", len(batch), delay)
                connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                for event in batch:
                    event.pk = None
                    event._state.adding = True


_writer: AuditWriter | None = None
_writer_lock = threading.Lock()


def get_writer() -> AuditWriter:
    global _writer
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = AuditWriter()
                atexit.register(_writer.close)
    return _writer
