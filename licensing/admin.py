"""Admin of subscription plans, licenses (with suspend / reinstate / revoke) and usage logs."""

import secrets
from datetime import timedelta

from django.contrib import admin, messages
from django.utils import timezone

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    SoftDeleteAdminMixin,
)

from .models import License, LicenseUsageLog, SubscriptionPlan


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(CelaestModelAdmin):
    list_display = ["name", "code", "price_monthly", "price_yearly", "currency", "is_active", "sort_order"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "is_active", "sort_order"]}),
        ("Prices", {"fields": ["price_monthly", "price_yearly", "currency"]}),
        (
            "Entitlements",
            {
                "fields": ["limits", "features"],
                "description": "limits: max_users, ai_requests_per_month, tokens_per_month, max_machines, "
                "max_batch_size.",
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]


class ExpiryListFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        return [("expired", "Past its expiry"), ("30d", "Expires within 30 days"), ("never", "Never expires")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "30d":
            return queryset.filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=30))
        if self.value() == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


@admin.register(License)
class LicenseAdmin(SoftDeleteAdminMixin, CelaestModelAdmin):
    list_display = [
        "license_key",
        "organization",
        "plan",
        "status",
        "expires_at",
        "ai_requests_used",
        "created_at",
        "is_deleted",
    ]
    list_filter = ["status", ExpiryListFilter, "plan"]
    list_select_related = ["organization", "plan"]
    search_fields = ["license_key", "organization__name", "organization__slug"]
    autocomplete_fields = ["organization", "plan"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "ai_requests_used",
        "issued_at",
        "suspended_at",
        "revoked_at",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    fieldsets = [
        (None, {"fields": ["license_key", "organization", "plan", "expires_at", "custom_limits", "notes"]}),
        ("Status", {"fields": ["status", "status_reason", "issued_at", "suspended_at", "revoked_at"]}),
        ("Usage", {"fields": ["ai_requests_used"]}),
        ("Record", {"fields": ["created_at", "updated_at", "deleted_at"], "classes": ["collapse"]}),
    ]
    actions = [*SoftDeleteAdminMixin.actions, "suspend_licenses", "reinstate_licenses", "revoke_licenses"]

    def get_changeform_initial_data(self, request):
        # A key nobody can guess (192 random bits), until the licensing service issues keys here.
        return {"license_key": secrets.token_hex(24).upper(), **super().get_changeform_initial_data(request)}

    # Tiny status changes for staff; the licensing services will replace them.
    def _set_status(self, request, queryset, *, allowed_from, verb, **changes):
        changed = queryset.filter(status__in=allowed_from).update(updated_at=timezone.now(), **changes)
        skipped = queryset.count() - changed
        message = f"{changed} license(s) {verb}."
        if skipped:
            message += f" {skipped} skipped: their status does not allow it."
        self.message_user(request, message, messages.SUCCESS if changed else messages.WARNING)

    @admin.action(description="Suspend selected licenses", permissions=["change"])
    def suspend_licenses(self, request, queryset):
        self._set_status(
            request,
            queryset,
            allowed_from=[License.Status.ACTIVE, License.Status.TRIAL],
            verb="suspended",
            status=License.Status.SUSPENDED,
            suspended_at=timezone.now(),
            status_reason=f"Suspended by {request.user} in the admin",
        )

    @admin.action(description="Reinstate selected suspended licenses", permissions=["change"])
    def reinstate_licenses(self, request, queryset):
        self._set_status(
            request,
            queryset,
            allowed_from=[License.Status.SUSPENDED],
            verb="reinstated",
            status=License.Status.ACTIVE,
            suspended_at=None,
            status_reason="",
        )

    @admin.action(description="Revoke selected licenses (final)", permissions=["change"])
    def revoke_licenses(self, request, queryset):
        self._set_status(
            request,
            queryset,
            allowed_from=[s for s in License.Status.values if s != License.Status.REVOKED],
            verb="revoked",
            status=License.Status.REVOKED,
            revoked_at=timezone.now(),
            status_reason=f"Revoked by {request.user} in the admin",
        )


@admin.register(LicenseUsageLog)
class LicenseUsageLogAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = [
        "license",
        "organization",
        "period_start",
        "period_end",
        "ai_requests_count",
        "tokens_input",
        "tokens_output",
        "tokens_cached",
        "calculated_cost",
    ]
    list_select_related = ["license", "organization"]
    date_hierarchy = "period_start"
    search_fields = ["license__license_key__exact", "organization__slug__exact"]
    search_help_text = "Exact license key or organization slug."
