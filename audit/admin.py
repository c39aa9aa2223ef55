from __future__ import annotations

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from .models import AuditEvent


class CheapPaginator(Paginator):
    """Counts at most ``CAP`` rows: with millions of events a full COUNT(*) per page view is the slow part.

    Past the cap the admin offers the first ``CAP / list_per_page`` pages; filters narrow further.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP].count()


class ServerIdFilter(admin.SimpleListFilter):
    title = "server"
    parameter_name = "server_id"

    def lookups(self, request, model_admin):
        from connectors.models import Connector

        return [(str(pk), name) for pk, name in Connector.objects.values_list("id", "name")[:200]]

    def queryset(self, request, queryset):
        return queryset.filter(server_id=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "timestamp",
        "action_type",
        "actor_name",
        "server_name",
        "resource_name",
        "client_name",
        "duration_ms",
    ]
    list_filter = ["action_type", ServerIdFilter]
    search_fields = ["=correlation_id"]  # indexed; actor, server and action have filters
    search_help_text = "Exact correlation id"
    paginator = CheapPaginator
    show_full_result_count = False
    list_per_page = 50
    date_hierarchy = None
    ordering = ["-id"]
    readonly_fields = [
        "id",
        "timestamp",
        "action_type",
        "actor",
        "actor_email",
        "actor_name",
        "agent_id",
        "server_id",
        "server_name",
        "resource_type",
        "resource_name",
        "client_name",
        "client_version",
        "correlation_id",
        "ip_address",
        "duration_ms",
        "pretty_details",
    ]
    exclude = ["details"]

    def get_search_results(self, request, queryset, search_term):
        # Exact, case-sensitive match so the index on correlation_id is used (the admin's "=" means iexact).
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(correlation_id=term), False

    @admin.display(description="Details")
    def pretty_details(self, obj: AuditEvent) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.details, indent=2))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
