from __future__ import annotations

from rest_framework import serializers

from ..models import AgentAccount, Delegation


class AgentAccountSerializer(serializers.ModelSerializer):
    client_id = serializers.CharField(read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AgentAccount
        fields = ["id", "name", "description", "enabled", "client_id", "owner", "created_at", "updated_at"]
        read_only_fields = ["id", "client_id", "owner", "created_at", "updated_at"]


class NewAgentAccountSerializer(AgentAccountSerializer):
    client_secret = serializers.CharField(read_only=True, help_text="Shown once; stored hashed.")

    class Meta(AgentAccountSerializer.Meta):
        fields = [*AgentAccountSerializer.Meta.fields, "client_secret"]


class DelegationSerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="name", queryset=AgentAccount.objects.filter(enabled=True))
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Delegation
        fields = ["id", "agent", "user", "created_at", "revoked_at"]
        read_only_fields = ["id", "user", "created_at", "revoked_at"]
