"""Agent accounts, delegations and on-behalf-of token exchange: every write audited, caches invalidated."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_access_token_model, get_application_model, set_token_value

from audit.models import ActionType
from audit.services import audit_record
from runlayer.cache_version import bump_config_version
from runlayer.crypto import new_token

from .models import AgentAccount, Delegation

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class NewAgentAccount:
    account: AgentAccount
    client_secret: str  # shown once


def _audit(action: str, account: AgentAccount, actor: AbstractBaseUser | None, **details: Any) -> None:
    audit_record(
        action_type=action,
        actor=actor,
        resource_type="agent_account",
        resource_name=account.name,
        details={"agent_account_id": str(account.id), "client_id": account.application.client_id, **details},
    )


def agent_account_create(
    *, name: str, actor: AbstractBaseUser | None, description: str = "", owner: AbstractBaseUser | None = None
) -> NewAgentAccount:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["a name is required"]})
    if len(name) > 100:
        raise ValidationError({"name": ["must be at most 100 characters"]})
    if AgentAccount.objects.filter(name=name).exists():
        raise ValidationError({"name": [f"an agent account named {name!r} exists already"]})
    Application = get_application_model()
    secret = generate_client_secret()
    with transaction.atomic():
        # No user on the application: client-credentials tokens then carry no user (they are the agent's own).
        application = Application.objects.create(
            name=f"agent: {name}",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,
            hash_client_secret=True,
            user=None,
        )
        account = AgentAccount.objects.create(
            name=name, description=description, owner=owner or actor, application=application
        )
        _audit(ActionType.AGENT_ACCOUNT_CREATED, account, actor)
        transaction.on_commit(bump_config_version)
    return NewAgentAccount(account=account, client_secret=secret)


def agent_account_set_enabled(*, account: AgentAccount, enabled: bool, actor: AbstractBaseUser | None) -> AgentAccount:
    if account.enabled == enabled:
        return account
    with transaction.atomic():
        account.enabled = enabled
        account.save(update_fields=["enabled", "updated_at"])
        action = ActionType.AGENT_ACCOUNT_ENABLED if enabled else ActionType.AGENT_ACCOUNT_DISABLED
        _audit(action, account, actor)
        transaction.on_commit(bump_config_version)
    return account


def agent_account_delete(*, account: AgentAccount, actor: AbstractBaseUser | None) -> None:
    with transaction.atomic():
        _audit(ActionType.AGENT_ACCOUNT_DELETED, account, actor)
        application = account.application
        account.delete()
        application.delete()  # its tokens go with it
        transaction.on_commit(bump_config_version)


def delegation_grant(*, user: AbstractBaseUser, account: AgentAccount) -> Delegation:
    """``user`` lets ``account`` act on their behalf (idempotent)."""
    with transaction.atomic():
        existing = Delegation.objects.filter(user=user, agent=account, revoked_at__isnull=True).first()
        if existing is not None:
            return existing
        delegation = Delegation.objects.create(user=user, agent=account)
        _audit(ActionType.AGENT_UPDATED, account, user, delegation="granted", user=user.get_username())
        transaction.on_commit(bump_config_version)
    return delegation


def delegation_revoke(*, delegation: Delegation, actor: AbstractBaseUser | None) -> Delegation:
    if delegation.revoked_at is not None:
        return delegation
    with transaction.atomic():
        delegation.revoked_at = timezone.now()
        delegation.save(update_fields=["revoked_at"])
        _audit(ActionType.AGENT_UPDATED, delegation.agent, actor, delegation="revoked", user=str(delegation.user))
        transaction.on_commit(bump_config_version)
    return delegation


class TokenError(Exception):
    """An OAuth error answer: ``error`` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def authenticate_agent(client_id: str, client_secret: str) -> AgentAccount:
    account = AgentAccount.objects.select_related("application").filter(application__client_id=client_id or "").first()
    if account is None or not check_password(client_secret or "", account.application.client_secret):
        raise TokenError("invalid_client", "unknown client or wrong secret (user API keys cannot mint tokens)", 401)
    if not account.enabled:
        raise TokenError("invalid_client", f"the agent account {account.name!r} is disabled", 401)
    return account


def subject_user(subject_token: str) -> AbstractBaseUser | None:
    """The active user a subject token (their API key or their own OAuth access token) stands for."""
    from runlayer.services import api_key_authenticate

    if subject_token.startswith("rl_"):
        key = api_key_authenticate(subject_token)
        return key.user if key is not None else None
    token = (
        get_access_token_model()
        .objects.select_related("user", "application")
        .filter(token_checksum=hashlib.sha256(subject_token.encode()).hexdigest())
        .first()
    )
    if token is None or token.is_expired() or token.user is None or not token.user.is_active:
        return None
    if AgentAccount.objects.filter(application_id=token.application_id).exists():
        return None  # an agent's token is not a user's
    return token.user


def token_exchange(*, account: AgentAccount, subject_token: str, subject_token_type: str) -> dict[str, Any]:
    """RFC 8693: an on-behalf-of access token for ``account`` and the subject token's user, if they delegated."""
    if subject_token_type != ACCESS_TOKEN_TYPE:
        raise TokenError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
    user = subject_user(subject_token or "")
    if user is None:
        _audit(ActionType.AGENT_ACCOUNT_TOKEN_EXCHANGE_DENIED, account, None, reason="invalid subject token")
        raise TokenError("invalid_grant", "the subject token is invalid, expired or not a user's")
    if not Delegation.objects.filter(user=user, agent=account, revoked_at__isnull=True).exists():
        reason = f"{user.get_username()} has not delegated to the agent account {account.name!r}"
        _audit(ActionType.AGENT_ACCOUNT_TOKEN_EXCHANGE_DENIED, account, user, reason=reason)
        raise TokenError("invalid_grant", reason)
    lifetime = int(settings.OAUTH2_PROVIDER.get("ACCESS_TOKEN_EXPIRE_SECONDS", 3600))
    value = new_token("rlobo_")
    scope = "mcp api"
    token = get_access_token_model()(
        user=user, application=account.application, expires=timezone.now() + timedelta(seconds=lifetime), scope=scope
    )
    set_token_value(token, value)  # stored as a checksum only (RFC 9700)
    token.save()
    _audit(ActionType.AGENT_ACCOUNT_TOKEN_EXCHANGE_SUCCESS, account, user, user=user.get_username())
    return {
        "access_token": value,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
