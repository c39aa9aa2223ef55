from __future__ import annotations

import django_filters
from django import forms

from .models import AuditEvent


class CommaListFilter(django_filters.BaseInFilter, django_filters.CharFilter):
    """``?action_type=a,b`` → ``action_type IN (a, b)``."""


class AuditEventFilterSet(django_filters.FilterSet):
    action_type = CommaListFilter(field_name="action_type")
    server_id = django_filters.UUIDFilter(field_name="server_id")
    agent_id = django_filters.UUIDFilter(field_name="agent_id")
    actor_id = django_filters.NumberFilter(field_name="actor_id")
    user_id = django_filters.NumberFilter(field_name="actor_id")
    client_name = django_filters.CharFilter(field_name="client_name")
    correlation_id = django_filters.CharFilter(field_name="correlation_id")
    start_date = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    end_date = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lte")

    class Meta:
        model = AuditEvent
        fields = []
        form = forms.Form
