from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..install import proxy_url
from ..models import CatalogEntry, Connector, ConnectorCapability, ConnectorStatus, DeploymentMode, Transport
from ..selectors import is_admin

SECRET_MASK = "********"


class TransportConfigSerializer(serializers.Serializer):
    args = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False), required=False)
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text=f"Write-only values: reads show {SECRET_MASK!r}; writing {SECRET_MASK!r} keeps the stored value.",
    )
    inherit_env = serializers.ListField(child=serializers.CharField(), required=False)


class ServerSerializer(serializers.ModelSerializer):
    """A connector in the contract's shape. Transport details are shown to admins only."""

    transport_type = serializers.CharField(source="transport")
    transport_config = serializers.SerializerMethodField()
    is_official = serializers.SerializerMethodField()
    catalog_entry_name = serializers.SerializerMethodField()
    proxy_url = serializers.SerializerMethodField()
    sync_required = serializers.BooleanField(read_only=True)

    class Meta:
        model = Connector
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "status",
            "icon_url",
            "is_official",
            "deployment_mode",
            "transport_type",
            "url",
            "transport_config",
            "version",
            "is_sensitive",
            "catalog_entry_name",
            "proxy_url",
            "sync_required",
            "capabilities_synced_at",
            "last_sync_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _admin(self) -> bool:
        request = self.context.get("request")
        return bool(request and is_admin(request.user))

    @extend_schema_field(TransportConfigSerializer(allow_null=True))
    def get_transport_config(self, obj: Connector) -> dict[str, Any] | None:
        if not self._admin():
            return None
        return {
            "args": obj.args,
            "env": obj.env,
            "headers": {name: SECRET_MASK for name in (obj.headers or {})},
            "inherit_env": obj.inherit_env,
        }

    def get_is_official(self, obj: Connector) -> bool:
        return bool(obj.catalog_entry and obj.catalog_entry.is_official)

    def get_catalog_entry_name(self, obj: Connector) -> str | None:
        return obj.catalog_entry.name if obj.catalog_entry else None

    def get_proxy_url(self, obj: Connector) -> str | None:
        return proxy_url(obj) if obj.is_hosted else None

    def to_representation(self, instance: Connector) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self._admin():
            data["url"] = instance.url if not instance.is_hosted else None
            data.pop("last_sync_error", None)
        return data


class ServerWriteSerializer(serializers.Serializer):
    """Create (all of it) or PATCH (any of it) a connector."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False)
    icon_url = serializers.CharField(allow_blank=True, required=False)
    status = serializers.ChoiceField(choices=ConnectorStatus.choices, required=False)
    deployment_mode = serializers.ChoiceField(choices=DeploymentMode.choices)
    transport_type = serializers.ChoiceField(choices=Transport.choices)
    url = serializers.CharField(allow_blank=True, required=False, max_length=2000)
    transport_config = TransportConfigSerializer(required=False, allow_null=True)
    is_sensitive = serializers.BooleanField(required=False)
    catalog_entry = serializers.SlugRelatedField(
        slug_field="slug", queryset=CatalogEntry.objects.all(), required=False, allow_null=True
    )

    def to_service_kwargs(self, current: Connector | None = None) -> dict[str, Any]:
        data = dict(self.validated_data)
        kwargs: dict[str, Any] = {}
        for field in ("name", "description", "icon_url", "status", "deployment_mode", "url", "is_sensitive"):
            if field in data:
                kwargs[field] = data[field]
        if "transport_type" in data:
            kwargs["transport"] = data["transport_type"]
        config = data.get("transport_config")
        if config:
            for field in ("args", "env", "inherit_env"):
                if field in config:
                    kwargs[field] = config[field]
            if "headers" in config:
                stored = (current.headers or {}) if current is not None else {}
                kwargs["headers"] = {
                    name: (stored.get(name, "") if value == SECRET_MASK else value)
                    for name, value in config["headers"].items()
                }
        if current is None and data.get("catalog_entry") is not None:
            kwargs["catalog_entry"] = data["catalog_entry"]
        return kwargs


class ServerAccessSerializer(serializers.Serializer):
    users = serializers.ListField(child=serializers.CharField(), required=False, help_text="Usernames or user ids.")
    groups = serializers.ListField(child=serializers.CharField(), required=False, help_text="Group names or ids.")


class CapabilitySerializer(serializers.ModelSerializer):
    class Meta:
        model = ConnectorCapability
        fields = ["kind", "name", "definition", "definition_hash", "synced_at"]


class CatalogEntrySerializer(serializers.ModelSerializer):
    transport_type = serializers.CharField(source="transport")

    class Meta:
        model = CatalogEntry
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "icon_url",
            "homepage",
            "is_official",
            "deployment_mode",
            "transport_type",
            "url",
            "args",
            "env",
            "inherit_env",
        ]


class InstantiateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
