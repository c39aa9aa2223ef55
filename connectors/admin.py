from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from .capabilities import CapabilityFetchError
from .forms import ConnectorAdminForm
from .install import install_material
from .models import CatalogEntry, Connector, ConnectorCapability, ConnectorStatus, DeploymentMode
from .services import (
    catalog_entry_instantiate,
    connector_create,
    connector_delete,
    connector_set_status,
    connector_sync_capabilities,
    connector_update,
)


class CapabilityInline(admin.TabularInline):
    model = ConnectorCapability
    extra = 0
    can_delete = False
    fields = ["kind", "name", "short_description", "definition_hash", "synced_at"]
    readonly_fields = fields
    ordering = ["kind", "name"]

    @admin.display(description="Description")
    def short_description(self, obj: ConnectorCapability) -> str:
        text = obj.definition.get("description") or obj.definition.get("title") or ""
        return text[:160]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorAdminForm
    list_display = [
        "name",
        "status",
        "deployment_mode",
        "transport",
        "version",
        "capability_count",
        "capabilities_synced_at",
        "updated_at",
    ]
    list_filter = ["status", "deployment_mode", "transport", "catalog_entry"]
    search_fields = ["name", "slug", "description", "url"]
    list_select_related = ["catalog_entry", "owner"]
    readonly_fields = [
        "id",
        "slug",
        "version",
        "catalog_entry",
        "owner",
        "capabilities_synced_at",
        "capabilities_version",
        "last_sync_error",
        "created_at",
        "updated_at",
        "install_snippets",
    ]
    filter_horizontal = ["users", "groups"]
    inlines = [CapabilityInline]
    actions = ["activate", "disable", "sync_capabilities"]
    fieldsets = [
        (None, {"fields": ["id", "name", "slug", "description", "icon_url", "status", "is_sensitive"]}),
        (
            "How it runs",
            {"fields": ["deployment_mode", "transport", "url", "args", "env", "headers_input", "inherit_env"]},
        ),
        ("Who may use it", {"fields": ["users", "groups"]}),
        (
            "State",
            {
                "fields": [
                    "version",
                    "catalog_entry",
                    "owner",
                    "capabilities_synced_at",
                    "capabilities_version",
                    "last_sync_error",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
        ("Install in an MCP client", {"fields": ["install_snippets"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_capability_count=Count("capabilities"))

    @admin.display(description="Capabilities", ordering="_capability_count")
    def capability_count(self, obj: Connector) -> int:
        return getattr(obj, "_capability_count", 0)

    @admin.display(description="Install snippets")
    def install_snippets(self, obj: Connector) -> str:
        if not obj.pk:
            return "-"
        material = install_material(obj)
        rows = []
        for client, info in material["clients"].items():
            rows.append(
                (client, json.dumps(info["config"], indent=2), info.get("deeplink") or info.get("command") or "")
            )
        return format_html_join(
            "",
            "<h4>{}</h4><pre style='white-space:pre-wrap'>{}</pre><p><code style='word-break:break-all'>{}</code></p>",
            rows,
        )

    def save_model(self, request, obj: Connector, form: ConnectorAdminForm, change: bool) -> None:
        kwargs = form.service_kwargs()
        if change:
            current = Connector.objects.get(pk=obj.pk)
            updated = connector_update(connector=current, actor=request.user, **kwargs)
            obj.pk = updated.pk
            obj.refresh_from_db()
        else:
            created = connector_create(actor=request.user, **kwargs)
            obj.pk = created.pk
            obj.refresh_from_db()
        # many-to-many (users, groups) are saved by save_related with the form, after this.

    def save_related(self, request, form, formsets, change) -> None:
        from .services import connector_set_access

        form.instance = Connector.objects.get(pk=form.instance.pk)
        for formset in formsets:  # the capability inline is read-only; saving it records "nothing changed"
            self.save_formset(request, form, formset, change=change)
        connector_set_access(
            connector=form.instance,
            actor=request.user,
            users=[u.pk for u in form.cleaned_data.get("users", [])],
            groups=[g.pk for g in form.cleaned_data.get("groups", [])],
        )

    def delete_model(self, request, obj: Connector) -> None:
        connector_delete(connector=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for connector in queryset:
            connector_delete(connector=connector, actor=request.user)

    @admin.action(description="Activate selected connectors")
    def activate(self, request, queryset) -> None:
        self._set_status(request, queryset, ConnectorStatus.ACTIVE, "activated")

    @admin.action(description="Disable selected connectors")
    def disable(self, request, queryset) -> None:
        self._set_status(request, queryset, ConnectorStatus.DISABLED, "disabled")

    def _set_status(self, request, queryset, status: str, verb: str) -> None:
        changed = 0
        for connector in queryset:
            if connector.status != status:
                connector_set_status(connector=connector, actor=request.user, status=status)
                changed += 1
        self.message_user(request, f"{changed} connector(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Sync capabilities from the MCP server")
    def sync_capabilities(self, request, queryset) -> None:
        synced, skipped, failures = 0, 0, []
        for connector in queryset:
            if connector.deployment_mode != DeploymentMode.HOSTED:
                skipped += 1
                continue
            try:
                connector_sync_capabilities(connector=connector, actor=request.user)
                synced += 1
            except CapabilityFetchError as exc:
                failures.append(f"{connector.name}: {exc}")
        if synced:
            self.message_user(request, f"{synced} connector(s) synced.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} local connector(s) skipped: the CLI syncs those.", messages.WARNING)
        for failure in failures:
            self.message_user(request, f"Sync failed for {failure}", messages.ERROR)


@admin.register(CatalogEntry)
class CatalogEntryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "deployment_mode", "transport", "is_official", "connector_count"]
    list_filter = ["deployment_mode", "transport", "is_official"]
    search_fields = ["name", "slug", "description", "url"]
    readonly_fields = ["id", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["instantiate"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_connector_count=Count("connectors"))

    @admin.display(description="Connectors", ordering="_connector_count")
    def connector_count(self, obj: CatalogEntry) -> int:
        return getattr(obj, "_connector_count", 0)

    @admin.action(description="Create a draft connector from each selected entry")
    def instantiate(self, request, queryset) -> None:
        created = 0
        for entry in queryset:
            catalog_entry_instantiate(entry=entry, actor=request.user)
            created += 1
        self.message_user(request, f"{created} draft connector(s) created.", messages.SUCCESS)


@admin.register(ConnectorCapability)
class ConnectorCapabilityAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "connector", "definition_hash", "synced_at"]
    list_filter = ["kind", "connector"]
    search_fields = ["name", "connector__name"]
    list_select_related = ["connector"]
    readonly_fields = ["connector", "kind", "name", "pretty_definition", "definition_hash", "synced_at"]
    exclude = ["definition"]

    @admin.display(description="Definition")
    def pretty_definition(self, obj: ConnectorCapability) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.definition, indent=2))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
