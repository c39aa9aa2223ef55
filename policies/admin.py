from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .access_requests import (
    access_request_approve,
    access_request_create,
    access_request_reject,
    access_request_validate,
)
from .models import AccessRequest, GuardSettings, Policy, ToolPin, WebhookDelivery, WebhookEndpoint
from .services import FIELDS, policy_create, policy_delete, policy_update, policy_validate


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = [*FIELDS, "users", "groups", "agents"]

    def clean(self):
        cleaned = super().clean()
        candidate = Policy(**{f: cleaned.get(f, getattr(self.instance, f, None)) for f in FIELDS})
        try:
            policy_validate(candidate)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return cleaned


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("global", "Global"), ("connector", "One connector")]

    def queryset(self, request, queryset):
        if self.value() == "global":
            return queryset.filter(connector__isnull=True)
        if self.value() == "connector":
            return queryset.filter(connector__isnull=False)
        return queryset


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ["name", "effect", "connector", "enabled", "everyone", "updated_at"]
    list_filter = ["effect", "enabled", ScopeFilter, "connector"]
    search_fields = ["name", "description"]
    list_select_related = ["connector"]
    readonly_fields = ["id", "created_at", "updated_at"]
    filter_horizontal = ["users", "groups", "agents"]
    actions = ["enable", "disable"]

    def save_model(self, request, obj: Policy, form, change: bool) -> None:
        data = {f: form.cleaned_data.get(f) for f in FIELDS}
        users = [u.pk for u in form.cleaned_data.get("users", [])]
        groups = [g.pk for g in form.cleaned_data.get("groups", [])]
        agents = [str(a.pk) for a in form.cleaned_data.get("agents", [])]
        if change:
            saved = policy_update(policy=obj, actor=request.user, users=users, groups=groups, agents=agents, **data)
        else:
            saved = policy_create(actor=request.user, users=users, groups=groups, agents=agents, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change) -> None:
        pass  # users and groups are set by the service in save_model

    def delete_model(self, request, obj: Policy) -> None:
        policy_delete(policy=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for policy in queryset:
            policy_delete(policy=policy, actor=request.user)

    @admin.action(description="Enable selected policies")
    def enable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected policies")
    def disable(self, request, queryset) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        changed = 0
        for policy in queryset.filter(enabled=not enabled):
            policy_update(policy=policy, actor=request.user, enabled=enabled)
            changed += 1
        self.message_user(request, f"{changed} policy(ies) {'enabled' if enabled else 'disabled'}.", messages.SUCCESS)


class AccessRequestAddForm(forms.ModelForm):
    class Meta:
        model = AccessRequest
        fields = ["requester", "connector", "tools", "reason"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("requester") and cleaned.get("connector"):
            try:
                access_request_validate(
                    requester=cleaned["requester"],
                    connector=cleaned["connector"],
                    reason=cleaned.get("reason", ""),
                    tools=cleaned.get("tools") or [],
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        self.add_error(field if field in self.fields else None, error)
        return cleaned


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    add_form = AccessRequestAddForm

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    list_display = ["requester", "connector", "tools", "state", "created_at", "decided_by", "decided_at"]
    list_filter = ["state", "connector"]
    search_fields = ["requester__username", "connector__name", "reason"]
    list_select_related = ["requester", "connector", "decided_by"]
    readonly_fields = [
        "id",
        "requester",
        "connector",
        "tools",
        "reason",
        "state",
        "decided_by",
        "decision_note",
        "granted_policy",
        "created_at",
        "decided_at",
    ]
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        return (
            self.readonly_fields
            if obj
            else ["id", "state", "decided_by", "decision_note", "granted_policy", "created_at", "decided_at"]
        )

    def get_fields(self, request, obj=None):
        return None if obj else ["requester", "connector", "tools", "reason"]

    def save_model(self, request, obj: AccessRequest, form, change: bool) -> None:
        if change:
            return  # decisions go through the actions
        created = access_request_create(
            requester=form.cleaned_data["requester"],
            connector=form.cleaned_data["connector"],
            reason=form.cleaned_data["reason"],
            tools=form.cleaned_data.get("tools") or [],
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Approve selected requests (grants access)")
    def approve(self, request, queryset) -> None:
        self._decide(request, queryset, access_request_approve, "approved")

    @admin.action(description="Reject selected requests")
    def reject(self, request, queryset) -> None:
        self._decide(request, queryset, access_request_reject, "rejected")

    def _decide(self, request, queryset, fn, verb: str) -> None:
        done, skipped = 0, 0
        for item in queryset:
            try:
                fn(request=item, actor=request.user)
                done += 1
            except ValidationError:
                skipped += 1
        self.message_user(request, f"{done} request(s) {verb}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} request(s) skipped: not pending.", messages.WARNING)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "enabled", "events", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "url"]
    readonly_fields = ["id", "created_at"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "response_code", "created_at", "delivered_at"]
    list_filter = ["status", "event", "endpoint"]
    list_select_related = ["endpoint"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GuardSettings)
class GuardSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "secrets_action", "pii_action", "injection_action", "hidden_action", "updated_at"]
    list_filter = ["secrets_action", "pii_action", "injection_action", "hidden_action"]
    search_fields = ["connector__name"]
    list_select_related = ["connector"]
    readonly_fields = ["id", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        from django.db import transaction

        from runlayer.cache_version import bump_config_version

        super().save_model(request, obj, form, change)
        transaction.on_commit(bump_config_version)

    def delete_model(self, request, obj) -> None:
        from django.db import transaction

        from runlayer.cache_version import bump_config_version

        super().delete_model(request, obj)
        transaction.on_commit(bump_config_version)


@admin.register(ToolPin)
class ToolPinAdmin(admin.ModelAdmin):
    list_display = ["name", "connector", "status", "approved_at", "updated_at"]
    list_filter = ["status", "connector"]
    search_fields = ["name", "connector__name"]
    list_select_related = ["connector"]
    readonly_fields = [
        "connector",
        "name",
        "status",
        "approved_hash",
        "approved_definition",
        "current_hash",
        "current_definition",
        "findings",
        "approved_by",
        "approved_at",
        "updated_at",
    ]
    actions = ["approve"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Approve the current definition of the selected tools")
    def approve(self, request, queryset) -> None:
        from .toolguard.pins import tool_pin_approve

        count = 0
        for pin in queryset.exclude(status="approved"):
            tool_pin_approve(pin=pin, actor=request.user)
            count += 1
        self.message_user(request, f"{count} tool definition(s) approved.", messages.SUCCESS)
