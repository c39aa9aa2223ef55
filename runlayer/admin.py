from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from .models import ApiKey, DeviceAuthorization, UserSecret
from .secrets import user_secret_delete, user_secret_set
from .services import api_key_create, api_key_revoke


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["user", "name", "expires_at"]


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "active", "created_at", "last_used_at", "last_used_ip", "revoked_at"]
    list_filter = [ActiveFilter, "created_at"]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    list_select_related = ["user"]
    readonly_fields = ["id", "prefix", "created_at", "last_used_at", "last_used_ip", "revoked_at"]
    actions = ["revoke"]
    autocomplete_fields = ["user"]

    @admin.display(boolean=True, description="Active")
    def active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, **kwargs)

    # an existing key is shown, never edited: revoke it and create another instead
    SHOWN_FIELDS = [
        "id",
        "user",
        "name",
        "prefix",
        "expires_at",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    ]

    def get_fields(self, request, obj=None):
        return ["user", "name", "expires_at"] if obj is None else self.SHOWN_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.SHOWN_FIELDS

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if change:
            return  # keys are immutable; revoke and create a new one instead
        new = api_key_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data.get("expires_at"),
            actor=request.user,
        )
        obj.pk = new.api_key.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            format_html("New API key (copy it now, it is not shown again): <code>{}</code>", new.key),
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or super().has_change_permission(request, obj)

    def delete_model(self, request, obj: ApiKey) -> None:
        api_key_revoke(api_key=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key, actor=request.user)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key, actor=request.user)
            revoked += 1
        self.message_user(request, f"{revoked} API key(s) revoked.", messages.SUCCESS)


class UserSecretForm(forms.ModelForm):
    new_value = forms.CharField(
        label="Value",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored value.",
    )

    class Meta:
        model = UserSecret
        fields = ["user", "name"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_value"):
            self.add_error("new_value", "a value is required")
        return cleaned


@admin.register(UserSecret)
class UserSecretAdmin(admin.ModelAdmin):
    form = UserSecretForm
    list_display = ["name", "user", "updated_at"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["id", "created_at", "updated_at"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj: UserSecret, form, change: bool) -> None:
        value = form.cleaned_data.get("new_value")
        if value:
            saved = user_secret_set(user=form.cleaned_data["user"], name=form.cleaned_data["name"], value=value)
            obj.pk = saved.pk
            obj.refresh_from_db()

    def delete_model(self, request, obj: UserSecret) -> None:
        user_secret_delete(user=obj.user, name=obj.name)

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "user", "name"] if obj else self.readonly_fields


@admin.register(DeviceAuthorization)
class DeviceAuthorizationAdmin(admin.ModelAdmin):
    """Device logins (`runlayer login`), read-only: approval happens on the /device page."""

    list_display = ["device_name", "user_code", "status", "user", "requested_ip", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["device_name", "user_code", "user__username"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
