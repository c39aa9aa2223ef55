from __future__ import annotations

from django.apps import AppConfig


class RunlayerConfig(AppConfig):
    """Identities shared by every app: API keys (and later per-user secrets and device codes)."""

    name = "runlayer"
    verbose_name = "Identities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI authentication extension)
        from .signals import connect_cache_invalidation

        connect_cache_invalidation()
