"""Who is calling the gateway: API keys and OAuth access tokens, resolved through a versioned cache.

A credential is looked up in the database once; afterwards the answer comes from memory until the
configuration version moves (a key revoked, a user deactivated or moved between groups, …) or, for an
OAuth token, until it expires. The cache is keyed by the SHA-256 of the credential, never the credential.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from connectors.selectors import principal_of
from policies.engine import Principal
from runlayer.cache_version import aread_config_version

MAX_ENTRIES = 50_000
LAST_USED_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Identity:
    principal: Principal
    kind: str  # "api_key" | "oauth"
    credential_id: str
    display_name: str
    expires_at: float | None = None  # epoch seconds, for OAuth tokens


_cache: dict[str, tuple[int, Identity | None]] = {}
_last_used: dict[str, float] = {}
_lock = threading.Lock()
_touch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-last-used")


def _load(digest: str, is_api_key: bool) -> Identity | None:
    close_old_connections()
    if is_api_key:
        from runlayer.models import ApiKey

        key = ApiKey.objects.select_related("user").filter(key_hash=digest).first()
        if key is None or not key.is_active or not key.user.is_active:
            return None
        return Identity(
            principal=principal_of(key.user),
            kind="api_key",
            credential_id=str(key.id),
            display_name=key.user.get_full_name() or key.user.get_username(),
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
        )
    from oauth2_provider.models import get_access_token_model

    token = get_access_token_model().objects.select_related("user", "application").filter(token_checksum=digest).first()
    if token is None or token.is_expired() or not token.allow_scopes(["mcp"]):
        return None
    user = token.user
    agent = _agent_of(token)
    if agent is not None:
        if not agent.enabled:
            return None
        if user is None:  # the agent account's own client-credentials token
            return Identity(
                principal=Principal(user_id=None, username=f"agent:{agent.name}", agent_id=str(agent.id)),
                kind="oauth",
                credential_id=str(token.pk),
                display_name=agent.name,
                expires_at=token.expires.timestamp(),
            )
        # On behalf of a user: both the agent and the user must be allowed (the engine intersects them).
        if not user.is_active or not agent.delegations.filter(user=user, revoked_at__isnull=True).exists():
            return None
        principal = principal_of(user)
        return Identity(
            principal=Principal(
                user_id=principal.user_id,
                username=principal.username,
                email=principal.email,
                group_ids=principal.group_ids,
                is_admin=False,
                agent_id=str(agent.id),
            ),
            kind="oauth",
            credential_id=str(token.pk),
            display_name=f"{agent.name} for {user.get_username()}",
            expires_at=token.expires.timestamp(),
        )
    if user is None or not user.is_active:
        return None
    return Identity(
        principal=principal_of(user),
        kind="oauth",
        credential_id=str(token.pk),
        display_name=user.get_full_name() or user.get_username(),
        expires_at=token.expires.timestamp(),
    )


def _agent_of(token):
    from agents.models import AgentAccount

    if token.application_id is None:
        return None
    return AgentAccount.objects.filter(application_id=token.application_id).first()


def _touch(api_key_id: str, ip: str | None) -> None:
    from runlayer.models import ApiKey

    close_old_connections()
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=timezone.now(), last_used_ip=ip)


async def authenticate(credential: str, *, ip: str | None) -> Identity | None:
    if not credential or len(credential) > 4096:
        return None
    digest = hashlib.sha256(credential.encode()).hexdigest()
    version = await aread_config_version()
    cached = _cache.get(digest)
    if cached is not None and cached[0] == version:
        identity = cached[1]
    else:
        identity = await sync_to_async(_load, thread_sensitive=False)(digest, credential.startswith("rl_"))
        with _lock:
            if len(_cache) >= MAX_ENTRIES:
                _cache.clear()
            _cache[digest] = (version, identity)
    if identity is None:
        return None
    if identity.expires_at is not None and identity.expires_at <= time.time():
        return None
    if identity.kind == "api_key":
        now = time.monotonic()
        if now - _last_used.get(identity.credential_id, -LAST_USED_EVERY) >= LAST_USED_EVERY:
            _last_used[identity.credential_id] = now
            _touch_pool.submit(_touch, identity.credential_id, ip)
    return identity


def credential_from_headers(headers: dict[str, str]) -> str | None:
    key = headers.get("x-runlayer-api-key")
    if key:
        return key.strip()
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


__all__ = ["Identity", "authenticate", "credential_from_headers"]
