"""Per-user secrets: storage (encrypted) and the ``{{ user.secret.NAME }}`` placeholders in header values."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from .crypto import decrypt_text, encrypt_text
from .models import UserSecret

PLACEHOLDER = re.compile(r"\{\{\s*user\.secret\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME = re.compile(UserSecret.NAME_PATTERN)
MAX_VALUE_LENGTH = 16_384


class MissingSecret(Exception):
    """A connector needs a secret the user has not stored. The message names it and is safe to show."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"this connector needs your secret {name!r}: store it with PUT /api/v1/secrets/{name} before using it"
        )


def secret_names_in(headers: dict[str, str]) -> set[str]:
    return {match for value in headers.values() for match in PLACEHOLDER.findall(value)}


def resolve_headers(headers: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """Headers with every placeholder replaced by the user's value; ``MissingSecret`` names one not stored."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in secrets:
            raise MissingSecret(name)
        return secrets[name]

    return {key: PLACEHOLDER.sub(substitute, value) if "{{" in value else value for key, value in headers.items()}


def user_secret_set(*, user: AbstractBaseUser, name: str, value: str) -> UserSecret:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError({"name": ["must be letters, digits and underscores, not starting with a digit"]})
    if not isinstance(value, str) or value == "":
        raise ValidationError({"value": ["a non-empty value is required"]})
    if len(value) > MAX_VALUE_LENGTH or any(ch in value for ch in "\r\n\x00"):
        raise ValidationError({"value": [f"must be one line of at most {MAX_VALUE_LENGTH} characters"]})
    with transaction.atomic():
        secret, _ = UserSecret.objects.update_or_create(user=user, name=name, defaults={"value": encrypt_text(value)})
    _changed()
    return secret


def user_secret_delete(*, user: AbstractBaseUser, name: str) -> bool:
    deleted, _ = UserSecret.objects.filter(user=user, name=name).delete()
    if deleted:
        _changed()
    return bool(deleted)


def user_secrets_of(user_id: int) -> dict[str, str]:
    """All of a user's secrets, decrypted (for the gateway's cache, never for display)."""
    return {s.name: decrypt_text(s.value) for s in UserSecret.objects.filter(user_id=user_id)}


def _changed() -> None:
    from .cache_version import bump_config_version

    transaction.on_commit(bump_config_version)
