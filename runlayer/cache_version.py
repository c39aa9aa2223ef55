"""A shared version counter for in-process caches (connectors, access, policies, secrets).

Every write that changes what a cache derives from calls ``bump_config_version()`` after commit. Each
process keeps its caches tagged with the version they were built at and rebuilds when the shared counter
moves. The counter lives in Redis when configured and in the database otherwise, so all workers agree.
The read is memoised for ``CHECK_INTERVAL`` seconds: a change reaches every worker within that time
without costing a round trip on every call.
"""

from __future__ import annotations

import os
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import F

CONFIG = "config"
CHECK_INTERVAL = float(os.environ.get("RUNLAYER_CACHE_CHECK_SECONDS", "0.2"))

_lock = threading.Lock()
_memo: dict[str, tuple[float, int]] = {}


_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


def bump_config_version(name: str = CONFIG) -> int:
    if settings.REDIS_URL:
        value = int(_redis().incr(f"runlayer:version:{name}"))
    else:
        from .models import ConfigVersion

        with transaction.atomic():
            ConfigVersion.objects.get_or_create(name=name)
            ConfigVersion.objects.filter(name=name).update(value=F("value") + 1)
            value = ConfigVersion.objects.get(name=name).value
    with _lock:
        _memo[name] = (time.monotonic(), value)
    return value


def read_config_version(name: str = CONFIG, *, fresh: bool = False) -> int:
    now = time.monotonic()
    if not fresh:
        cached = _memo.get(name)
        if cached is not None and now - cached[0] < CHECK_INTERVAL:
            return cached[1]
    if settings.REDIS_URL:
        raw = _redis().get(f"runlayer:version:{name}")
        value = int(raw) if raw is not None else 0
    else:
        from .models import ConfigVersion

        value = ConfigVersion.objects.filter(name=name).values_list("value", flat=True).first() or 0
    with _lock:
        _memo[name] = (now, value)
    return value


async def aread_config_version(name: str = CONFIG) -> int:
    """``read_config_version`` for async code: answers from the memo without leaving the event loop."""
    cached = _memo.get(name)
    if cached is not None and time.monotonic() - cached[0] < CHECK_INTERVAL:
        return cached[1]
    return await sync_to_async(read_config_version, thread_sensitive=False)(name, fresh=True)
