from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiKey(models.Model):
    """A user's API key. Only a SHA-256 of the key is stored; the key itself is shown once."""

    PREFIX = "rl_"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the key, to recognise it in lists ("rl_AbCd…").
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [models.CheckConstraint(condition=~Q(name=""), name="apikey_name_not_empty")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class ConfigVersion(models.Model):
    """Counters that caches in every process compare against to know when to rebuild (one row per name)."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class UserSecret(models.Model):
    """A user's own value for a placeholder such as ``{{ user.secret.GITHUB_TOKEN }}`` in connector headers.

    The value is encrypted at rest and never shown again (write-only in the API and the admin).
    """

    NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100)
    value = models.TextField(help_text="Fernet token of the value.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user", "name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="usersecret_unique_name_per_user")]

    def __str__(self) -> str:
        return f"{self.name} of {self.user_id}"


class RateCounter(models.Model):
    """Requests per principal per one-minute window, shared by every worker (used when Redis is not configured)."""

    key = models.CharField(max_length=100)
    window_start = models.BigIntegerField(help_text="Epoch minute.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="ratecounter_unique_window")]
        indexes = [models.Index(fields=["window_start"])]


class DeviceAuthorization(models.Model):
    """One ``runlayer login`` (OAuth 2.0 device flow, RFC 8628 style): a code a signed-in user approves.

    Only a hash of the device code is stored; the user code is short, single-use and expires.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DENIED = "denied"
        CONSUMED = "consumed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device_code_hash = models.CharField(max_length=64, unique=True, editable=False)
    user_code = models.CharField(max_length=16, unique=True)
    device_name = models.CharField(max_length=100)
    requested_ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="device_logins"
    )
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    interval = models.PositiveSmallIntegerField(default=5)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "device login"
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"{self.device_name} ({self.user_code}, {self.status})"
