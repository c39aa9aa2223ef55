"""Access requests: a user asks, an admin approves (granting access in the same transaction) or rejects."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import ActionType
from audit.services import audit_record
from connectors.models import Connector
from connectors.selectors import connector_is_assigned
from runlayer.cache_version import bump_config_version

from .models import AccessRequest, AccessRequestState, Effect
from .services import policy_create


def _audit(action: str, request: AccessRequest, actor: AbstractBaseUser | None, **extra: Any) -> None:
    audit_record(
        action_type=action,
        actor=actor,
        server=request.connector,
        resource_type="access_request",
        resource_name=request.connector.name,
        details={
            "access_request_id": str(request.id),
            "requester": request.requester.get_username(),
            "tools": request.tools,
            "reason": request.reason[:1000],
            **extra,
        },
    )


def _notify(event: str, request: AccessRequest) -> None:
    from .tasks import notify_access_request

    request_id = str(request.id)
    transaction.on_commit(lambda: notify_access_request.delay(request_id, event))


def access_request_validate(
    *, requester: AbstractBaseUser, connector: Connector, reason: str, tools: list[str] | None = None
) -> tuple[str, list[str]]:
    """The cleaned reason and tools, or a ``ValidationError`` saying why such a request cannot be filed."""
    reason = (reason or "").strip()
    tools = list(tools or [])
    if not reason:
        raise ValidationError({"reason": ["say why you need it"]})
    if len(reason) > 5000:
        raise ValidationError({"reason": ["must be at most 5000 characters"]})
    if not all(isinstance(t, str) and t.strip() for t in tools):
        raise ValidationError({"tools": ["must be a list of tool names"]})
    if not tools and connector_is_assigned(requester, connector):
        raise ValidationError({"connector": ["you already have access to this connector"]})
    if AccessRequest.objects.filter(
        requester=requester, connector=connector, state=AccessRequestState.PENDING
    ).exists():
        raise ValidationError({"connector": ["you already have a pending request for this connector"]})
    return reason, tools


def access_request_create(
    *, requester: AbstractBaseUser, connector: Connector, reason: str, tools: list[str] | None = None
) -> AccessRequest:
    reason, tools = access_request_validate(requester=requester, connector=connector, reason=reason, tools=tools)
    try:
        with transaction.atomic():
            request = AccessRequest.objects.create(requester=requester, connector=connector, reason=reason, tools=tools)
            _audit(ActionType.ACCESS_REQUEST_CREATED, request, requester)
            _notify("access_request_created", request)
    except IntegrityError:  # a concurrent duplicate lost the race to the constraint
        raise ValidationError({"connector": ["you already have a pending request for this connector"]}) from None
    return request


def _decide(request: AccessRequest, state: str) -> AccessRequest:
    locked = AccessRequest.objects.select_for_update().select_related("requester", "connector").get(pk=request.pk)
    if locked.state != AccessRequestState.PENDING:
        raise ValidationError({"state": [f"this request is already {locked.state}"]})
    locked.state = state
    locked.decided_at = timezone.now()
    return locked


def access_request_approve(*, request: AccessRequest, actor: AbstractBaseUser, note: str = "") -> AccessRequest:
    """Approve and grant: the whole connector as an assignment, or the listed tools as an allow policy."""
    with transaction.atomic():
        request = _decide(request, AccessRequestState.APPROVED)
        request.decided_by, request.decision_note = actor, note
        if request.tools:
            request.granted_policy = policy_create(
                actor=actor,
                name=f"Access request of {request.requester.get_username()}"[:200],
                description=f"Granted by access request {request.id}",
                effect=Effect.ALLOW,
                connector=request.connector,
                users=[request.requester.pk],
                tools=request.tools,
            )
        else:
            request.connector.users.add(request.requester)
            transaction.on_commit(bump_config_version)
        request.save()
        _audit(ActionType.ACCESS_REQUEST_APPROVED, request, actor, note=note)
        _notify("access_request_approved", request)
    return request


def access_request_reject(*, request: AccessRequest, actor: AbstractBaseUser, note: str = "") -> AccessRequest:
    with transaction.atomic():
        request = _decide(request, AccessRequestState.REJECTED)
        request.decided_by, request.decision_note = actor, note
        request.save()
        _audit(ActionType.ACCESS_REQUEST_REJECTED, request, actor, note=note)
        _notify("access_request_rejected", request)
    return request


def access_request_withdraw(*, request: AccessRequest, actor: AbstractBaseUser) -> AccessRequest:
    if request.requester_id != actor.pk:
        raise ValidationError({"state": ["only the requester can withdraw a request"]})
    with transaction.atomic():
        request = _decide(request, AccessRequestState.WITHDRAWN)
        request.save()
        _audit(ActionType.ACCESS_REQUEST_WITHDRAWN, request, actor)
    return request
