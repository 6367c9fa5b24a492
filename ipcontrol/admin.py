"""Admin of where licenses are used: machine bindings, validation attempts and collisions."""

from django.contrib import admin, messages
from django.db.models import F

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    Panel,
    ReadOnlyTabularInline,
    changelist_url,
    contribute_inline,
    contribute_panel,
)
from celaest.admin_display import admin_link, humanised_time, short_key, status_badge
from celaest.errors import Conflict
from celaest.net import client_ip
from identity.models import Organization
from licensing.models import License

from .collisions import collision_resolve
from .models import LicenseCollision, LicenseIpBinding, LicenseValidation
from .services import binding_deactivate


class LicenseIpBindingInline(ReadOnlyTabularInline):
    model = LicenseIpBinding
    fields = ["machine_id", "hostname", "ip_address", "is_active", "first_seen", "last_seen", "activation_count"]
    readonly_fields = fields
    ordering = ["-is_active", "-last_seen"]


# Shown on the license page; licensing sits below ipcontrol, so the inline is contributed from here.
contribute_inline(License, LicenseIpBindingInline)

#: how many validations and collisions a license or organization page lists
RECENT_ROWS = 10


def validation_rows(validations) -> list[list]:
    return [
        [
            humanised_time(validation.created_at),
            status_badge("valid" if validation.is_valid else "invalid", validation.result_code),
            short_key(validation.machine_id, keep=10),
            validation.ip_address or "—",
            validation.hostname or "—",
        ]
        for validation in validations
    ]


def collision_rows(collisions, *, with_license: bool = False) -> list[list]:
    return [
        [
            *([admin_link(collision.license, limit=20)] if with_license else []),
            admin_link(collision, collision.get_collision_type_display()),
            status_badge(collision.severity, collision.get_severity_display()),
            humanised_time(collision.detected_at),
            humanised_time(collision.resolved_at) if collision.resolved_at else status_badge("open", "open"),
        ]
        for collision in collisions
    ]


def _open_first(queryset):
    return queryset.order_by(F("resolved_at").desc(nulls_first=True), "-detected_at")


def license_activity_panels(request, license) -> list[Panel]:
    """The license page's recent validations and collisions (open ones first)."""
    validations = LicenseValidation.objects.filter(license=license).order_by("-created_at")[:RECENT_ROWS]
    collisions = _open_first(LicenseCollision.objects.filter(license=license))[:RECENT_ROWS]
    return [
        Panel(
            title="Recent validations",
            columns=["When", "Answer", "Machine", "IP", "Hostname"],
            rows=validation_rows(validations),
            more_url=changelist_url(LicenseValidation, license__id__exact=license.pk),
            empty="No validation yet.",
        ),
        Panel(
            title="Collisions",
            columns=["Type", "Severity", "Detected", "Resolved"],
            rows=collision_rows(collisions),
            more_url=changelist_url(LicenseCollision, license__id__exact=license.pk),
            empty="No collision.",
        ),
    ]


contribute_panel(License, license_activity_panels, order=50)


def organization_machines_panels(request, organization) -> list[Panel]:
    """The organization page's machines in use and its collisions (open ones first)."""
    machines = (
        LicenseIpBinding.objects.filter(organization=organization, is_active=True)
        .select_related("license")
        .order_by("-last_seen")[:RECENT_ROWS]
    )
    collisions = _open_first(LicenseCollision.objects.filter(organization=organization).select_related("license"))[
        :RECENT_ROWS
    ]
    return [
        Panel(
            title="Machines in use",
            columns=["Machine", "Hostname", "License", "IP", "Last seen"],
            rows=[
                [
                    admin_link(machine, machine.machine_id, limit=14),
                    machine.hostname or "—",
                    admin_link(machine.license, limit=14),
                    machine.ip_address or "—",
                    humanised_time(machine.last_seen),
                ]
                for machine in machines
            ],
            more_url=changelist_url(LicenseIpBinding, organization__id__exact=organization.pk, is_active__exact=1),
            empty="No machine in use.",
        ),
        Panel(
            title="Collisions",
            columns=["License", "Type", "Severity", "Detected", "Resolved"],
            rows=collision_rows(collisions, with_license=True),
            more_url=changelist_url(LicenseCollision, organization__id__exact=organization.pk),
            empty="No collision.",
        ),
    ]


contribute_panel(Organization, organization_machines_panels, order=20)


@admin.register(LicenseIpBinding)
class LicenseIpBindingAdmin(CelaestModelAdmin):
    list_display = [
        "machine_id",
        "hostname",
        "ip_address",
        "license",
        "organization",
        "is_active",
        "first_seen",
        "last_seen",
        "activation_count",
    ]
    list_filter = ["is_active", "last_seen"]
    list_select_related = ["license", "organization"]
    search_fields = ["machine_id", "hostname", "license__license_key", "organization__slug"]
    search_help_text = "Machine id, hostname, license key, organization slug or exact IP address."
    ip_search_fields = ("ip_address",)
    autocomplete_fields = ["license", "organization"]
    readonly_fields = ["first_seen", "last_seen", "activated_at", "activation_count", "created_at", "updated_at"]
    actions = ["deactivate_bindings"]

    @admin.action(description="Deactivate selected machines (frees their seat)", permissions=["change"])
    def deactivate_bindings(self, request, queryset):
        ip_address = client_ip(request)
        deactivated = sum(
            binding_deactivate(binding=binding, actor=request.user, source="admin", ip_address=ip_address)
            for binding in queryset.filter(is_active=True)
        )
        self.message_user(request, f"{deactivated} machine(s) deactivated.", messages.SUCCESS)


@admin.register(LicenseValidation)
class LicenseValidationAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = ["created_at", "result_code", "is_valid", "license", "ip_address", "machine_id", "hostname"]
    list_filter = ["is_valid"]
    list_select_related = ["license"]
    date_hierarchy = "created_at"
    search_fields = ["license__license_key__exact", "machine_id__exact", "hostname__exact", "result_code__exact"]
    search_help_text = "Exact license key, machine id, hostname, result code or IP address."
    ip_search_fields = ("ip_address",)


class CollisionStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(LicenseCollision)
class LicenseCollisionAdmin(CelaestModelAdmin):
    list_display = [
        "license",
        "collision_type",
        "severity",
        "ip_binding_a",
        "ip_binding_b",
        "detected_at",
        "resolved_at",
    ]
    list_filter = [CollisionStateFilter, "severity", "collision_type", "auto_resolved"]
    list_select_related = ["license", "ip_binding_a", "ip_binding_b"]
    search_fields = ["license__license_key", "organization__slug", "ip_binding_a__machine_id"]
    autocomplete_fields = ["organization", "license", "ip_binding_a", "ip_binding_b"]
    date_hierarchy = "detected_at"
    readonly_fields = ["detected_at", "last_seen_at", "resolved_at", "resolved_by", "auto_resolved", "created_at"]
    actions = ["mark_resolved"]

    @admin.action(description="Mark selected collisions resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        resolved = 0
        for collision in queryset.filter(resolved_at__isnull=True):
            try:
                collision_resolve(
                    collision=collision,
                    actor=request.user,
                    note=f"Resolved by {request.user} in the admin",
                    source="admin",
                    ip_address=client_ip(request),
                )
            except Conflict:
                continue  # resolved meanwhile
            resolved += 1
        self.message_user(request, f"{resolved} collision(s) resolved.", messages.SUCCESS)


from . import admin_machines  # noqa: E402, F401 - daily validation counts (ipcontrol/admin_machines.py)
