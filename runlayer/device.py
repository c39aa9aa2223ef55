"""Device login for ``runlayer login`` (RFC 8628 style): the CLI asks for a code, a signed-in user
approves it in the browser, the CLI's poll then receives a normal, revocable API key named after the device.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from audit.models import ActionType
from audit.services import audit_record

from .crypto import hash_token, new_token
from .models import DeviceAuthorization
from .services import api_key_create

# No vowels (no words) and no look-alikes (0/O, 1/I): easy to read aloud and to type.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
SLOW_DOWN_STEP = 1


class DeviceFlowError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class DeviceGrant:
    device_code: str
    authorization: DeviceAuthorization


def normalize_user_code(value: str) -> str:
    raw = "".join(ch for ch in (value or "").upper() if ch.isalnum())
    return f"{raw[:4]}-{raw[4:8]}" if len(raw) == 8 else raw


def device_authorize(*, device_name: str, ip: str | None) -> DeviceGrant:
    now = timezone.now()
    DeviceAuthorization.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    device_code = new_token("rldc_")
    for _ in range(10):
        user_code = normalize_user_code("".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8)))
        if not DeviceAuthorization.objects.filter(user_code=user_code).exists():
            break
    authorization = DeviceAuthorization.objects.create(
        device_code_hash=hash_token(device_code),
        user_code=user_code,
        device_name=(device_name or "unnamed device").strip()[:80] or "unnamed device",
        requested_ip=ip,
        interval=settings.RUNLAYER_DEVICE_POLL_INTERVAL_SECONDS,
        expires_at=now + timedelta(seconds=settings.RUNLAYER_DEVICE_CODE_TTL_SECONDS),
    )
    return DeviceGrant(device_code=device_code, authorization=authorization)


def device_pending(user_code: str) -> DeviceAuthorization | None:
    """The pending, unexpired authorization a user code names (for the approval page), else None."""
    return DeviceAuthorization.objects.filter(
        user_code=normalize_user_code(user_code),
        status=DeviceAuthorization.Status.PENDING,
        expires_at__gt=timezone.now(),
    ).first()


def device_decide(*, user_code: str, user: AbstractBaseUser, approve: bool) -> DeviceAuthorization:
    with transaction.atomic():
        authorization = (
            DeviceAuthorization.objects.select_for_update().filter(user_code=normalize_user_code(user_code)).first()
        )
        if authorization is None:
            raise DeviceFlowError(404, "No login request has this code. Check the code your terminal shows.")
        if authorization.status != DeviceAuthorization.Status.PENDING:
            raise DeviceFlowError(409, "This code was already used. Run `runlayer login` again for a new one.")
        if authorization.expires_at <= timezone.now():
            raise DeviceFlowError(410, "This code has expired. Run `runlayer login` again for a new one.")
        authorization.status = DeviceAuthorization.Status.APPROVED if approve else DeviceAuthorization.Status.DENIED
        authorization.user, authorization.decided_at = user, timezone.now()
        authorization.save(update_fields=["status", "user", "decided_at"])
        if not approve:
            audit_record(
                action_type=ActionType.AUTH_FAILED,
                actor=user,
                resource_type="device_login",
                resource_name=authorization.device_name,
                details={"reason": "device login denied by the user", "user_code": authorization.user_code},
            )
    return authorization


def device_token(device_code: str) -> str:
    """The new API key once approved; else ``DeviceFlowError`` carrying the status and detail to answer."""
    if not isinstance(device_code, str) or not device_code.startswith("rldc_") or len(device_code) > 200:
        raise DeviceFlowError(400, "invalid device_code: run `runlayer login` again")
    now = timezone.now()
    with transaction.atomic():
        authorization = (
            DeviceAuthorization.objects.select_for_update().filter(device_code_hash=hash_token(device_code)).first()
        )
        if authorization is None:
            raise DeviceFlowError(400, "invalid device_code: run `runlayer login` again")
        status = authorization.status
        if status == DeviceAuthorization.Status.CONSUMED:
            raise DeviceFlowError(400, "this login was already completed; run `runlayer login` again")
        if status == DeviceAuthorization.Status.DENIED:
            raise DeviceFlowError(403, "access_denied: the login was denied in the browser")
        if authorization.expires_at <= now:
            raise DeviceFlowError(
                400, "expired_token: the code expired before it was approved; run `runlayer login` again"
            )
        if status == DeviceAuthorization.Status.PENDING:
            # Remember this poll (committed: the answer is a 202, not an error that rolls back).
            last, authorization.last_polled_at = authorization.last_polled_at, now
            too_fast = last is not None and (now - last).total_seconds() < authorization.interval * 0.8
            if too_fast:
                authorization.interval = min(authorization.interval + SLOW_DOWN_STEP, 60)
            authorization.save(update_fields=["last_polled_at", "interval"])
            key = None
        else:
            assert authorization.user is not None
            created = api_key_create(user=authorization.user, name=f"CLI on {authorization.device_name}"[:100])
            authorization.status, authorization.api_key = DeviceAuthorization.Status.CONSUMED, created.api_key
            authorization.save(update_fields=["status", "api_key"])
            key = created.key
    if key is None:
        raise DeviceFlowError(202, "slow_down" if too_fast else "authorization_pending")
    return key
