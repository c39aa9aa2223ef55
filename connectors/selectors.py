"""Reads of connectors: who sees and may use which."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from policies.engine import Principal

from .models import Connector, ConnectorStatus


def is_admin(user: AbstractBaseUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def _assigned_q(user: AbstractBaseUser) -> Q:
    return Q(users=user) | Q(groups__in=user.groups.all())


def connectors_visible_to(user: AbstractBaseUser, *, scope: str = "accessible") -> QuerySet[Connector]:
    """Connectors a user may see.

    ``accessible``: assigned to the user (directly or through a group) and active; for admins, every
    active connector. ``accessible_and_mine``: that plus those the user owns. ``all``: for admins every
    connector whatever its status; for other users the same as ``accessible_and_mine``.
    """
    qs = Connector.objects.select_related("catalog_entry")
    if not user.is_authenticated:
        return qs.none()
    if is_admin(user):
        if scope == "all":
            return qs
        if scope == "accessible_and_mine":
            return qs.filter(Q(status=ConnectorStatus.ACTIVE) | Q(owner=user))
        return qs.filter(status=ConnectorStatus.ACTIVE)
    ids = Connector.objects.filter(_assigned_q(user), status=ConnectorStatus.ACTIVE).values("id")
    if scope in ("accessible_and_mine", "all"):
        return qs.filter(Q(id__in=ids) | Q(owner=user))
    return qs.filter(id__in=ids)


def connector_is_assigned(user: AbstractBaseUser, connector: Connector) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return Connector.objects.filter(_assigned_q(user), pk=connector.pk).exists()


def principal_of(user: AbstractBaseUser) -> Principal:
    """The decision engine's view of a Django user."""
    return Principal(
        user_id=user.pk,
        username=user.get_username(),
        email=getattr(user, "email", "") or "",
        group_ids=frozenset(user.groups.values_list("id", flat=True)),
        is_admin=is_admin(user),
    )
