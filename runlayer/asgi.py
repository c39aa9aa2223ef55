"""The ASGI entry: a small router in front of Django.

Django's ASGI handler refuses the ``lifespan`` protocol, and the MCP pieces need it (session managers and
the upstream pool own task groups that must be entered at start-up and left at shutdown). So this router
answers ``lifespan`` itself, serves static files, and hands every other HTTP request to Django. MCP
endpoints are mounted here (see ``build_application``).

Run: ``uvicorn runlayer.asgi:application``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "runlayer.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from starlette.staticfiles import StaticFiles  # noqa: E402

logger = logging.getLogger("runlayer.asgi")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class Router:
    def __init__(self) -> None:
        self.django = get_asgi_application()
        self.static = StaticFiles(directory=str(settings.STATIC_ROOT), check_dir=False)
        # Async context managers entered for the life of the process (MCP session managers, pools).
        self.lifespan_hooks: list[Callable[[], contextlib.AbstractAsyncContextManager[Any]]] = []
        # (path prefix, path suffix, app) tried before Django.
        self.routes: list[tuple[str, str, ASGIApp]] = []

    async def __call__(self, scope: Scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if kind == "http":
            for prefix, suffix, app in self.routes:
                if path.startswith(prefix) and path.endswith(suffix):
                    await app(scope, receive, send)
                    return
            if path.startswith(settings.STATIC_URL):
                static_scope = dict(scope, root_path=scope.get("root_path", "") + settings.STATIC_URL.rstrip("/"))
                static_scope["path"] = path[len(settings.STATIC_URL) - 1 :]
                await self.static(static_scope, receive, send)
                return
            await self.django(scope, receive, send)
            return
        # websockets are not offered
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, scope: Scope, receive, send) -> None:
        stack = contextlib.AsyncExitStack()
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            for hook in self.lifespan_hooks:
                await stack.enter_async_context(hook())
        except Exception as exc:
            logger.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        try:
            await stack.aclose()
        except Exception as exc:
            logger.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def build_application() -> Router:
    from connectors.gateway.app import PREFIX, gateway
    from connectors.local.app import PREFIX as LOCAL_PREFIX
    from connectors.local.app import local_api

    router = Router()
    router.routes.append((PREFIX, "/mcp", gateway))
    router.routes.append((LOCAL_PREFIX, "", local_api))
    router.lifespan_hooks.append(gateway.lifespan)
    return router


application = build_application()
