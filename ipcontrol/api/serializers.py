"""Serializers of the IP control endpoints: the read-only records, and the public license
endpoints' requests and answers."""

from rest_framework import serializers

from ipcontrol.models import LicenseCollision, LicenseIpBinding, LicenseValidation
from ipcontrol.services import CheckWarning, Code
from licensing.models import BillingState, MachineScheme


class LicenseIpBindingSerializer(serializers.ModelSerializer):
    """A machine of the organization's licenses; its ``name`` is the only thing a customer edits."""

    class Meta:
        model = LicenseIpBinding
        fields = [
            "id", "license", "machine_id", "name", "hostname", "ip_address", "is_active", "first_seen", "last_seen",
            "activated_at", "deactivated_at", "deactivation_reason", "activation_count", "last_heartbeat_at",
            "lease_expires_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [field for field in fields if field != "name"]


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


class CollisionResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class StringField(serializers.CharField):
    """A JSON string, nothing coerced into one (``12`` is malformed, not ``"12"``)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class LicenseCheckRequestSerializer(serializers.Serializer):
    key = StringField(max_length=100)
    fingerprint = StringField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Identifies the machine."
    )
    hostname = StringField(max_length=255, required=False, allow_blank=True, default="")
    nonce = StringField(
        max_length=128, required=False, allow_null=True, default=None, help_text="Echoed back in the answer."
    )


class MachineRequestSerializer(LicenseCheckRequestSerializer):
    fingerprint = StringField(max_length=255, help_text="Identifies the machine.")


#: the most entitlement codes one validation may ask about, and the longest code
MAX_ENTITLEMENTS_ASKED = 50
MAX_ENTITLEMENT_LENGTH = 64


class LicenseValidateRequestSerializer(LicenseCheckRequestSerializer):
    entitlements = serializers.ListField(
        child=StringField(max_length=MAX_ENTITLEMENT_LENGTH),
        max_length=MAX_ENTITLEMENTS_ASKED,
        required=False,
        help_text="Entitlement codes the software needs: ENTITLEMENTS_MISSING lists those the license lacks.",
    )


class LicenseCheckLicenseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    plan = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    limits = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    max_machines = serializers.IntegerField(allow_null=True)
    active_machines = serializers.IntegerField(allow_null=True)
    machine_scheme = serializers.ChoiceField(choices=MachineScheme.choices)
    machine_ceiling = serializers.IntegerField(
        allow_null=True, help_text="The most machines admitted, overage allowance included."
    )
    overage_allowance = serializers.IntegerField(help_text="Percent of max_machines admitted (100: no overage).")
    heartbeat_window_seconds = serializers.IntegerField(allow_null=True)
    entitlements = serializers.ListField(child=serializers.CharField())
    billing_state = serializers.ChoiceField(choices=BillingState.choices)


class LicenseCheckResponseSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.ChoiceField(choices=Code.ALL)
    detail = serializers.CharField()
    nonce = serializers.CharField(allow_null=True)
    license = LicenseCheckLicenseSerializer(allow_null=True)
    warnings = serializers.ListField(
        child=serializers.ChoiceField(choices=[CheckWarning.PAYMENT_PAST_DUE]),
        required=False,
        help_text="Present when the license is usable but something needs attention (PAYMENT_PAST_DUE).",
    )
    missing_entitlements = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="With ENTITLEMENTS_MISSING."
    )
    lease_expires_at = serializers.DateTimeField(
        required=False, help_text="Heartbeats: until when the machine's seat is leased."
    )


class SignedDocumentSerializer(serializers.Serializer):
    """A document signed like a certificate (an air-gapped activation's response file)."""

    format = serializers.CharField()
    alg = serializers.CharField()
    kid = serializers.CharField()
    payload = serializers.CharField(help_text="base64url of the JSON claims; the signature covers this text.")
    signature = serializers.CharField(help_text="base64url Ed25519 signature of payload.")


class CertificateSerializer(SignedDocumentSerializer):
    """An offline license certificate."""


class LicenseCheckoutResponseSerializer(LicenseCheckResponseSerializer):
    certificate = CertificateSerializer(allow_null=True)


class LicenseFileSerializer(serializers.Serializer):
    format = serializers.CharField()
    alg = serializers.CharField()
    enc = serializers.CharField(help_text="A256GCM: AES-256-GCM under HKDF-SHA256(license key, fingerprint).")
    kid = serializers.CharField()
    nonce = serializers.CharField()
    ciphertext = serializers.CharField(help_text="base64url of the encrypted JSON claims.")
    signature = serializers.CharField(help_text="Ed25519 over '<format>.<kid>.<nonce>.<ciphertext>'.")


class LicenseFileResponseSerializer(LicenseCheckResponseSerializer):
    license_file = LicenseFileSerializer(allow_null=True)


class OfflineActivationRequestSerializer(serializers.Serializer):
    request = serializers.JSONField(
        help_text="The activation request file the offline software wrote (its JSON, or its text)."
    )


class PublicKeySerializer(serializers.Serializer):
    kid = serializers.CharField()
    public_key = serializers.CharField(help_text="base64url of the raw 32-byte Ed25519 public key.")
    pem = serializers.CharField()


class PublicKeysSerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    current_kid = serializers.CharField()
    keys = PublicKeySerializer(many=True)


#: field -> (maximum length, may be blank, may be null); the serializers above document the same.
_CHECK_FIELDS = {"key": (100, False, False), "fingerprint": (255, True, False), "hostname": (255, True, False),
                 "nonce": (128, True, True)}  # fmt: skip


def check_request_parse(data, *, fingerprint_required: bool) -> tuple[dict, dict]:
    """``LicenseCheckRequestSerializer`` (or ``MachineRequestSerializer``) validation without a
    serializer instance: the public endpoints are the hottest path of the API, and building a
    serializer (a deep copy of its fields) costs more than the rest of the checks. Returns the
    cleaned data and the errors in the serializer's shape."""
    if not isinstance(data, dict):
        return {}, {"non_field_errors": ["Expected a JSON object."]}
    cleaned, errors = {}, {}
    for name, (max_length, blank, null) in _CHECK_FIELDS.items():
        value = data.get(name)
        required = name == "key" or (name == "fingerprint" and fingerprint_required)
        if value is None:
            if name in data and not null:
                errors[name] = ["This field may not be null."]
            elif required:
                errors[name] = ["This field is required."]
            cleaned[name] = None if null else ""
            continue
        if not isinstance(value, str):
            errors[name] = ["Not a valid string."]
            continue
        value = value.strip()
        if not value and (required or not blank):
            errors[name] = ["This field may not be blank."]
        elif len(value) > max_length:
            errors[name] = [f"Ensure this field has no more than {max_length} characters."]
        cleaned[name] = value
    cleaned["entitlements"] = _entitlements_parse(data.get("entitlements"), errors)
    return cleaned, errors


def _entitlements_parse(value, errors: dict) -> tuple[str, ...]:
    """The entitlement codes a validation asks about (``LicenseValidateRequestSerializer``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ENTITLEMENTS_ASKED:
        errors["entitlements"] = [f"Expected a list of at most {MAX_ENTITLEMENTS_ASKED} entitlement codes."]
        return ()
    if not all(isinstance(code, str) and 0 < len(code.strip()) <= MAX_ENTITLEMENT_LENGTH for code in value):
        errors["entitlements"] = [f"Each entitlement is a non-blank string of at most {MAX_ENTITLEMENT_LENGTH} chars."]
        return ()
    return tuple(code.strip() for code in value)
