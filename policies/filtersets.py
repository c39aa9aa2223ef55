from __future__ import annotations

import django_filters

from .models import Effect, Policy


class PolicyFilterSet(django_filters.FilterSet):
    effect = django_filters.ChoiceFilter(choices=Effect.choices)
    connector = django_filters.UUIDFilter(field_name="connector_id")
    is_global = django_filters.BooleanFilter(field_name="connector", lookup_expr="isnull")

    class Meta:
        model = Policy
        fields = ["effect", "enabled", "connector", "is_global"]
