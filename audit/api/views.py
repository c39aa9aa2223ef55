from __future__ import annotations

from rest_framework import viewsets

from connectors.selectors import is_admin

from ..filtersets import AuditEventFilterSet
from ..models import AuditEvent
from .serializers import AuditEventSerializer


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit events, newest first. Non-admins see only their own."""

    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.none()  # for the schema; get_queryset scopes to the caller
    filterset_class = AuditEventFilterSet

    def get_queryset(self):
        qs = AuditEvent.objects.all()
        if not is_admin(self.request.user):
            qs = qs.filter(actor=self.request.user)
        return qs.order_by("-id")
