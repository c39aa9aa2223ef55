from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor_info = serializers.SerializerMethodField()
    resource_info = serializers.SerializerMethodField()
    actor_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "action_type",
            "actor_id",
            "actor_info",
            "agent_id",
            "server_id",
            "resource_info",
            "client_name",
            "client_version",
            "correlation_id",
            "ip_address",
            "duration_ms",
            "details",
        ]

    def get_actor_info(self, obj: AuditEvent) -> dict[str, Any]:
        return {"id": obj.actor_id, "email": obj.actor_email, "name": obj.actor_name}

    def get_resource_info(self, obj: AuditEvent) -> dict[str, Any]:
        return {
            "type": obj.resource_type,
            "name": obj.resource_name,
            "server_id": str(obj.server_id) if obj.server_id else None,
            "server_name": obj.server_name,
        }
