"""Serializers of the audit endpoints (read-only: the trail is written by services, never by
the API)."""

from rest_framework import serializers

from audit.models import AuditLog, SystemEvent


class AuditLogSerializer(serializers.ModelSerializer):
    user_email = serializers.EmailField(source="user.email", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditLog
        fields = [
            "id", "organization", "user", "user_email", "action", "resource_type", "resource_id",
            "resource_repr", "changes", "ip_address", "user_agent", "source", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class SystemEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SystemEvent
        fields = ["id", "event_type", "severity", "source", "message", "organization", "data", "created_at"]
        read_only_fields = fields
