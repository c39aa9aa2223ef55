from __future__ import annotations

import django_filters

from .models import CatalogEntry, Connector, ConnectorStatus, DeploymentMode, Transport


class ConnectorFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ConnectorStatus.choices)
    deployment_mode = django_filters.ChoiceFilter(choices=DeploymentMode.choices)
    transport_type = django_filters.ChoiceFilter(field_name="transport", choices=Transport.choices)
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Connector
        fields = ["status", "deployment_mode", "transport_type", "name"]


class CatalogEntryFilterSet(django_filters.FilterSet):
    deployment_mode = django_filters.ChoiceFilter(choices=DeploymentMode.choices)
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = CatalogEntry
        fields = ["deployment_mode", "is_official", "q"]
