from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from .models import AgentAccount, Delegation
from .services import agent_account_create, agent_account_set_enabled


class AgentAccountAddForm(forms.ModelForm):
    class Meta:
        model = AgentAccount
        fields = ["name", "description"]


@admin.register(AgentAccount)
class AgentAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "client_id", "owner", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "application__client_id"]
    readonly_fields = ["id", "client_id", "owner", "created_at", "updated_at"]
    fields = ["id", "name", "description", "enabled", "client_id", "owner", "created_at", "updated_at"]
    actions = ["enable", "disable"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = AgentAccountAddForm
            kwargs["fields"] = ["name", "description"]
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "description"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [*self.readonly_fields, "name", "enabled"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["description", "updated_at"])
            return
        new = agent_account_create(name=obj.name, description=obj.description, actor=request.user)
        obj.pk = new.account.pk
        messages.warning(
            request,
            f"Client id {new.account.client_id}, client secret {new.client_secret}: copy the secret now, "
            "it is stored hashed and will not be shown again.",
        )

    def has_delete_permission(self, request, obj=None):
        return False  # deleting goes through the API, which also removes the OAuth application

    @admin.action(description="Enable the selected agent accounts")
    def enable(self, request, queryset):
        for account in queryset:
            agent_account_set_enabled(account=account, enabled=True, actor=request.user)
        self.message_user(request, f"{queryset.count()} agent account(s) enabled.")

    @admin.action(description="Disable the selected agent accounts (their tokens stop working)")
    def disable(self, request, queryset):
        for account in queryset:
            agent_account_set_enabled(account=account, enabled=False, actor=request.user)
        self.message_user(request, f"{queryset.count()} agent account(s) disabled.")


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    list_display = ["user", "agent", "created_at", "revoked_at"]
    list_filter = ["agent"]
    search_fields = ["user__username", "agent__name"]
    readonly_fields = ["id", "user", "agent", "created_at", "revoked_at"]

    def has_add_permission(self, request):
        return False  # users delegate themselves, through the API
