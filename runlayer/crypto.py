"""Secrets at rest: Fernet encryption with the key from ``settings.ENCRYPTION_KEY``, and hashing of tokens."""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def encrypt_text(plaintext: str) -> str:
    return _fernet(settings.ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return _fernet(settings.ENCRYPTION_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored secret cannot be decrypted with the configured RUNLAYER_ENCRYPTION_KEY") from None


def hash_token(token: str) -> str:
    """A token's lookup hash. Tokens are 256-bit random, so a fast unsalted hash is safe to index."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


class EncryptedJSONField(models.TextField):
    """A JSON value stored as one Fernet token: readable in Python, opaque in the database."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return json.loads(decrypt_text(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt_text(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return "<encrypted>"
