"""Cache invalidation for changes made outside our services (Django's own user and group admin).

Not business rules: these only tell the in-process caches (gateway, local API) that who-is-who changed.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save


def _bump(**kwargs) -> None:
    from .cache_version import bump_config_version

    transaction.on_commit(bump_config_version)


def connect_cache_invalidation() -> None:
    from oauth2_provider.models import get_access_token_model

    AccessToken = get_access_token_model()
    # A revoked OAuth token must fail on its next use in every worker.
    post_delete.connect(_bump, sender=AccessToken, dispatch_uid="runlayer-token-deleted", weak=False)
    User = get_user_model()
    post_save.connect(_bump, sender=User, dispatch_uid="runlayer-user-saved", weak=False)
    post_delete.connect(_bump, sender=User, dispatch_uid="runlayer-user-deleted", weak=False)
    post_delete.connect(_bump, sender=Group, dispatch_uid="runlayer-group-deleted", weak=False)
    m2m_changed.connect(_bump, sender=User.groups.through, dispatch_uid="runlayer-user-groups", weak=False)
