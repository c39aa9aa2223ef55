"""API keys: creation (the key is returned once), revocation and authentication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import ActionType
from audit.services import audit_record

from .cache_version import bump_config_version
from .crypto import hash_token, new_token
from .models import ApiKey

# last_used_at is a hint, not a log: refresh it at most this often to keep writes off the hot path.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class NewApiKey:
    api_key: ApiKey
    key: str  # the only time the plaintext key exists outside the client


def api_key_create(
    *, user: AbstractBaseUser, name: str, actor: AbstractBaseUser | None = None, expires_at: datetime | None = None
) -> NewApiKey:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["a name is required"]})
    if len(name) > 100:
        raise ValidationError({"name": ["must be at most 100 characters"]})
    if not user.is_active:
        raise ValidationError({"user": ["the user is inactive"]})
    key = new_token(ApiKey.PREFIX)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user, name=name, prefix=key[:10], key_hash=hash_token(key), expires_at=expires_at
        )
        audit_record(
            action_type=ActionType.API_KEY_CREATED,
            actor=actor or user,
            resource_type="api_key",
            resource_name=name,
            details={"api_key_id": str(api_key.id), "owner": user.get_username(), "prefix": api_key.prefix},
        )
    return NewApiKey(api_key=api_key, key=key)


def api_key_revoke(*, api_key: ApiKey, actor: AbstractBaseUser | None) -> ApiKey:
    if api_key.revoked_at is not None:
        return api_key
    with transaction.atomic():
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            action_type=ActionType.API_KEY_REVOKED,
            actor=actor,
            resource_type="api_key",
            resource_name=api_key.name,
            details={
                "api_key_id": str(api_key.id),
                "owner": api_key.user.get_username(),
                "prefix": api_key.prefix,
            },
        )
        transaction.on_commit(bump_config_version)  # caches holding the key drop it on their next request
    return api_key


def api_key_authenticate(key: str, *, ip_address: str | None = None) -> ApiKey | None:
    """The active key matching ``key`` (with its user loaded), or None. Records when and where it was used."""
    if not key.startswith(ApiKey.PREFIX) or len(key) > 200:
        return None
    api_key = ApiKey.objects.select_related("user").filter(key_hash=hash_token(key)).first()
    if api_key is None or not api_key.is_active or not api_key.user.is_active:
        return None
    now = timezone.now()
    if (
        api_key.last_used_at is None
        or now - api_key.last_used_at > LAST_USED_RESOLUTION
        or api_key.last_used_ip != ip_address
    ):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now, last_used_ip=ip_address)
        api_key.last_used_at, api_key.last_used_ip = now, ip_address
    return api_key
