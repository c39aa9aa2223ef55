from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from connectors.selectors import is_admin

from ..models import ApiKey


class MeSerializer(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    is_admin = serializers.SerializerMethodField()
    groups = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "name", "is_admin", "groups"]

    def get_name(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()

    def get_is_admin(self, obj) -> bool:
        return is_admin(obj)


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "is_active",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_ip",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class UserSecretSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class UserSecretWriteSerializer(serializers.Serializer):
    value = serializers.CharField(write_only=True, trim_whitespace=False, help_text="Write-only: never shown again.")
