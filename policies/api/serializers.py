from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import serializers

from agents.models import AgentAccount
from connectors.models import Connector

from ..models import Effect, Policy


class PolicySerializer(serializers.ModelSerializer):
    connector = serializers.PrimaryKeyRelatedField(queryset=Connector.objects.all(), allow_null=True, required=False)
    users = serializers.SlugRelatedField(
        many=True, slug_field="username", queryset=get_user_model().objects.all(), required=False
    )
    groups = serializers.SlugRelatedField(many=True, slug_field="name", queryset=Group.objects.all(), required=False)
    agents = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=AgentAccount.objects.all(), required=False
    )
    effect = serializers.ChoiceField(choices=Effect.choices)
    tools = serializers.ListField(child=serializers.CharField(), required=False)
    resources = serializers.ListField(child=serializers.CharField(), required=False)
    prompts = serializers.ListField(child=serializers.CharField(), required=False)
    conditions = serializers.ListField(child=serializers.DictField(), required=False)
    client_names = serializers.ListField(child=serializers.CharField(), required=False)
    ip_ranges = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = Policy
        fields = [
            "id",
            "name",
            "description",
            "enabled",
            "effect",
            "connector",
            "everyone",
            "users",
            "groups",
            "agents",
            "tools",
            "resources",
            "prompts",
            "conditions",
            "client_names",
            "ip_ranges",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class PolicyTestSerializer(serializers.Serializer):
    user = serializers.CharField(
        required=False, help_text="Username or id of the caller (with agent: the user the agent acts for)."
    )
    agent = serializers.CharField(
        required=False, help_text="Agent account name: the agent itself, or on behalf of user."
    )
    connector = serializers.UUIDField()
    method = serializers.ChoiceField(
        choices=["tools/call", "resources/read", "prompts/get", "initialize", "tools/list"], default="tools/call"
    )
    name = serializers.CharField(required=False, allow_null=True, help_text="Tool or prompt name, or resource URI.")
    arguments = serializers.DictField(required=False)
    client_name = serializers.CharField(required=False, allow_blank=True, default="")
    ip = serializers.IPAddressField(required=False, allow_null=True)


class DecisionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    rule = serializers.CharField(allow_null=True)


class AccessRequestSerializer(serializers.ModelSerializer):
    requester = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    connector = serializers.PrimaryKeyRelatedField(queryset=Connector.objects.all())
    connector_name = serializers.CharField(source="connector.name", read_only=True)
    tools = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        from ..models import AccessRequest

        model = AccessRequest
        fields = [
            "id",
            "requester",
            "connector",
            "connector_name",
            "tools",
            "reason",
            "state",
            "decided_by",
            "decision_note",
            "created_at",
            "decided_at",
        ]
        read_only_fields = ["id", "state", "decision_note", "created_at", "decided_at"]


class DecisionNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class GuardSettingsSerializer(serializers.ModelSerializer):
    connector = serializers.PrimaryKeyRelatedField(queryset=Connector.objects.all(), allow_null=True, required=False)

    class Meta:
        from ..models import GuardSettings

        model = GuardSettings
        fields = [
            "id",
            "connector",
            "secrets_action",
            "pii_action",
            "injection_action",
            "hidden_action",
            "definition_action",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]
        validators = []  # uniqueness is checked below with a readable message

    def validate(self, data):
        for field in ("injection_action", "hidden_action", "definition_action"):
            if data.get(field) == "mask":
                raise serializers.ValidationError({field: "only secrets and PII can be masked"})
        from ..models import GuardSettings

        connector = data.get("connector", getattr(self.instance, "connector", None))
        clash = GuardSettings.objects.filter(connector=connector)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            where = f"connector {connector.name!r}" if connector else "the global defaults"
            raise serializers.ValidationError({"connector": f"settings for {where} exist already: change those"})
        return data
