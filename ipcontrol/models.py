"""Where licenses are used: machine/IP bindings, every validation attempt, and collisions."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from celaest.db import ChangeAnnouncingManager, TimeStampedModel, UUIDModel


class LicenseIpBinding(TimeStampedModel):
    """A machine (fingerprint, ``machine_id``) activated on a license, with its last IP.

    With a heartbeat policy its seat is a lease until ``lease_expires_at``, extended by each
    heartbeat; a lease lapsed for longer than the grace is released (``deactivation_reason``
    ``heartbeat_lost``), and the machine is re-admitted when it beats again and a seat is free."""

    class DeactivationReason(models.TextChoices):
        CLIENT = "client", "Deactivated by the installed software"
        CUSTOMER = "customer", "Deactivated by the customer"
        STAFF = "staff", "Deactivated by staff"
        HEARTBEAT_LOST = "heartbeat_lost", "Heartbeat lost (lease lapsed)"
        STALE = "stale", "Not seen for too long"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="ip_bindings")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    machine_id = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255, blank=True)
    #: what the customer calls the machine (self-service rename); empty: its hostname
    name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivation_reason = models.CharField(max_length=16, choices=DeactivationReason.choices, blank=True)
    activation_count = models.PositiveIntegerField(default=1)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "license_ip_bindings"
        verbose_name = "machine binding"
        ordering = ["-last_seen"]
        indexes = [
            models.Index(
                fields=["license", "last_seen"], name="idx_bindings_license_active", condition=Q(is_active=True)
            ),
            # The lease job's scan: only live machines that hold a lease.
            models.Index(
                fields=["lease_expires_at"],
                name="idx_bindings_lease",
                condition=Q(is_active=True, lease_expires_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["license", "machine_id"], name="bindings_one_per_machine"),
        ]

    def __str__(self):
        return f"{self.machine_id} @ {self.ip_address}"


class LicenseValidation(UUIDModel):
    """One validation attempt, valid or not. Unknown keys have no license."""

    # No single-column indexes on license and organization: the (…, created_at) indexes below lead
    # with them, and every index is written once per validation on the hottest table.
    license = models.ForeignKey(
        "licensing.License",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="validations",
        db_index=False,
    )
    organization = models.ForeignKey(
        "identity.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    ip_binding = models.ForeignKey(
        LicenseIpBinding, on_delete=models.SET_NULL, null=True, blank=True, related_name="validations"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    machine_id = models.CharField(max_length=255, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    is_valid = models.BooleanField(default=False)
    result_code = models.CharField(max_length=32)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "license_validations"
        verbose_name = "license validation"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["license", "created_at"], name="idx_validations_license"),
            models.Index(fields=["organization", "created_at"], name="idx_validations_org_created"),
            models.Index(fields=["created_at"], name="idx_validations_created"),
        ]

    def __str__(self):
        return f"{self.result_code} {self.ip_address}"


class LicenseCollision(TimeStampedModel):
    """Anomalous simultaneous use of a license between two bindings."""

    class CollisionType(models.TextChoices):
        OVER_LIMIT = "over_limit", "More machines in use than allowed"
        CLONED_MACHINE = "cloned_machine", "Same machine from different IPs"
        ACTIVATION_CHURN = "activation_churn", "Repeated deactivate/activate"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    organization = models.ForeignKey("identity.Organization", on_delete=models.PROTECT, related_name="+")
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="collisions")
    ip_binding_a = models.ForeignKey(LicenseIpBinding, on_delete=models.CASCADE, related_name="collisions_as_a")
    ip_binding_b = models.ForeignKey(
        LicenseIpBinding, on_delete=models.CASCADE, null=True, blank=True, related_name="collisions_as_b"
    )
    collision_type = models.CharField(max_length=32, choices=CollisionType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    details = models.JSONField(default=dict, blank=True)
    detected_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    auto_resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    resolution_note = models.CharField(max_length=255, blank=True)

    class Meta:
        db_table = "license_collisions"
        verbose_name = "license collision"
        ordering = ["-detected_at"]
        indexes = [
            models.Index(
                fields=["license", "last_seen_at"], name="idx_collisions_open", condition=Q(resolved_at__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["license", "collision_type", "ip_binding_a", "ip_binding_b"],
                condition=Q(resolved_at__isnull=True),
                name="collisions_one_open_per_pair",
            ),
            # NULLs are distinct in a unique index, so single-machine collisions need their own.
            models.UniqueConstraint(
                fields=["license", "collision_type", "ip_binding_a"],
                condition=Q(resolved_at__isnull=True, ip_binding_b__isnull=True),
                name="collisions_one_open_per_machine",
            ),
        ]

    def __str__(self):
        return f"{self.collision_type} ({self.severity})"


class LicenseValidationDaily(UUIDModel):
    """How many validation attempts a license had in a day (UTC), by result: what reports keep
    once retention has dropped the attempts themselves (``ipcontrol.rollups``)."""

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="+")
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="validation_days")
    day = models.DateField()
    result_code = models.CharField(max_length=32)
    attempts = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "license_validation_daily"
        verbose_name = "daily validation count"
        ordering = ["-day", "result_code"]
        indexes = [models.Index(fields=["organization", "day"], name="idx_validation_daily_org")]
        constraints = [
            models.UniqueConstraint(fields=["license", "day", "result_code"], name="validation_daily_one_per_code")
        ]

    def __str__(self):
        return f"{self.day} {self.result_code} × {self.attempts}"


class OfflineCertificate(UUIDModel):
    """One offline document issued for a machine of a license: a signed certificate (checkout), an
    encrypted license file, or the license file an air-gapped activation answers. Recorded with
    the issuance (``ipcontrol.certificates.offline_certificate_record``), so staff see what a
    machine may run on offline and until when. The document itself is never kept: only its
    SHA-256, to recognise a file a customer sends back."""

    class Kind(models.TextChoices):
        CERTIFICATE = "certificate", "Signed certificate"
        LICENSE_FILE = "license_file", "Encrypted license file"
        AIR_GAPPED = "air_gapped", "Air-gapped activation"

    organization = models.ForeignKey("identity.Organization", on_delete=models.CASCADE, related_name="+")
    license = models.ForeignKey("licensing.License", on_delete=models.CASCADE, related_name="offline_certificates")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    fingerprint = models.CharField(max_length=255)
    #: the signing key's id (``kid``): which public key verifies the document
    key_id = models.CharField(max_length=64)
    #: SHA-256 of the document as issued (its JSON, keys sorted, no spaces)
    document_sha256 = models.CharField(max_length=64)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    #: the member who uploaded an air-gapped request; none when the software checked out by key
    issued_by = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "offline_certificates"
        verbose_name = "offline certificate"
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["license", "issued_at"], name="idx_offline_certs_license")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.fingerprint[:12]} ({self.issued_at:%Y-%m-%d})"
