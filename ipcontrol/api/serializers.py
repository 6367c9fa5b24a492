"""Serializers of the IP control endpoints (all read-only: the validation flow writes these)."""

from rest_framework import serializers

from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation


class LicenseIpBindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = LicenseIpBinding
        fields = [
            "id", "license", "machine_id", "hostname", "ip_address", "is_active", "first_seen", "last_seen",
            "activated_at", "deactivated_at", "activation_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class LicenseValidationSerializer(serializers.ModelSerializer):
    class Meta:
        model = LicenseValidation
        fields = [
            "id", "license", "ip_binding", "ip_address", "machine_id", "hostname", "is_valid", "result_code",
            "failure_reason", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class CollisionBindingSerializer(serializers.ModelSerializer):
    """The machine on one side of a collision."""

    class Meta:
        model = LicenseIpBinding
        fields = ["id", "machine_id", "hostname", "ip_address", "is_active", "last_seen"]
        read_only_fields = fields


class LicenseCollisionSerializer(serializers.ModelSerializer):
    ip_binding_a = CollisionBindingSerializer(read_only=True)
    ip_binding_b = CollisionBindingSerializer(read_only=True, allow_null=True)

    class Meta:
        model = LicenseCollision
        fields = [
            "id", "license", "ip_binding_a", "ip_binding_b", "collision_type", "severity", "details",
            "detected_at", "last_seen_at", "resolved_at", "auto_resolved", "resolution_note", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
