from __future__ import annotations

from rest_framework import permissions

from connectors.selectors import is_admin


class IsAdmin(permissions.BasePermission):
    message = "only administrators may do this"

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)


class IsAdminOrReadOnly(permissions.BasePermission):
    message = "only administrators may change connectors"

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return is_admin(request.user)
