"""Per-principal rate limits that hold across worker processes.

A fixed one-minute window per user (or agent account): Redis ``INCR`` when ``REDIS_URL`` is set, otherwise
an atomic upsert on a database row, so every uvicorn worker counts against the same number. Off when
``RUNLAYER_RATE_LIMIT_PER_MINUTE`` is 0.
"""

from __future__ import annotations

import random
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

WINDOW = 60


class RateLimiter:
    def __init__(self, per_minute: int, redis_url: str = "") -> None:
        self.per_minute = per_minute
        self._redis = None
        if redis_url and per_minute:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(redis_url)

    async def hit(self, key: str) -> float | None:
        """Count one request for ``key``; the seconds to wait when it is over the limit, else None."""
        if not self.per_minute:
            return None
        now = time.time()
        window = int(now // WINDOW)
        if self._redis is not None:
            name = f"runlayer:rate:{key}:{window}"
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, WINDOW * 2)
            count, _ = await pipe.execute()
        else:
            count = await sync_to_async(_db_hit, thread_sensitive=False)(key, window)
        if count > self.per_minute:
            return max(1.0, (window + 1) * WINDOW - now)
        return None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def _db_hit(key: str, window: int) -> int:
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO runlayer_ratecounter (key, window_start, count) VALUES (%s, %s, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET count = runlayer_ratecounter.count + 1 "
            "RETURNING count",
            [key, window],
        )
        count = cursor.fetchone()[0]
        if random.random() < 0.01:  # now and then, forget old windows
            cursor.execute("DELETE FROM runlayer_ratecounter WHERE window_start < %s", [window - 2])
    return count


def limiter_from_settings() -> RateLimiter:
    return RateLimiter(settings.RUNLAYER_RATE_LIMIT_PER_MINUTE, settings.REDIS_URL)
