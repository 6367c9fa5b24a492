"""Admin of where licenses are used: machine bindings, validation attempts and collisions."""

from django.contrib import admin, messages

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    ReadOnlyTabularInline,
    contribute_inline,
)
from celaest.errors import Conflict
from celaest.net import client_ip
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
        "last_seen_at",
        "resolved_at",
        "auto_resolved",
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
