"""Admin of subscription plans, licenses (with suspend / reinstate / revoke) and usage logs."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    SoftDeleteAdminMixin,
    SoftDeleteModelForm,
)
from celaest.net import client_ip

from . import services
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


class LicenseAdminForm(SoftDeleteModelForm):
    def clean_status(self):
        status = self.cleaned_data["status"]
        if self.instance._state.adding and status not in (License.Status.ACTIVE, License.Status.TRIAL):
            raise forms.ValidationError("A new license is active or trial.")
        return status


@admin.register(License)
class LicenseAdmin(SoftDeleteAdminMixin, CelaestModelAdmin):
    form = LicenseAdminForm
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
        "status_before_suspension",
        "suspended_at",
        "revoked_at",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    fieldsets = [
        (None, {"fields": ["license_key", "organization", "plan", "expires_at", "custom_limits", "notes"]}),
        (
            "Status",
            {
                "fields": [
                    "status",
                    "status_reason",
                    "status_before_suspension",
                    "issued_at",
                    "suspended_at",
                    "revoked_at",
                ]
            },
        ),
        ("Usage", {"fields": ["ai_requests_used"]}),
        ("Record", {"fields": ["created_at", "updated_at", "deleted_at"], "classes": ["collapse"]}),
    ]
    actions = [
        *SoftDeleteAdminMixin.actions,
        "suspend_licenses",
        "reinstate_licenses",
        "renew_licenses_30",
        "renew_licenses_365",
        "revoke_licenses",
    ]
    # After issuing, status and expiry change only through the actions (audited, with events).
    fields_set_by_services = ["license_key", "status", "status_reason", "expires_at"]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return [*readonly, "license_key", "status_reason"]
        return [*readonly, *self.fields_set_by_services]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new license is issued by the service: a fresh key, the seat limit, audit and event.
        issued = services.license_issue(
            organization=obj.organization,
            plan=obj.plan,
            status=obj.status,
            expires_at=obj.expires_at,
            custom_limits=obj.custom_limits,
            actor=request.user,
            source="admin",
        )
        if obj.notes:
            License.objects.filter(pk=issued.pk).update(notes=obj.notes)
        obj.pk, obj.license_key, obj._state.adding = issued.pk, issued.license_key, False

    def _apply(self, request, queryset, verb: str, transition) -> None:
        """Run ``transition`` on each selected license through the service; report what was refused."""
        ip_address = client_ip(request)
        self.apply_each(
            request,
            queryset,
            verb=verb,
            label=lambda license: license.license_key,
            operation=lambda license: transition(
                license=license, actor=request.user, source="admin", ip_address=ip_address
            ),
        )

    @admin.action(description="Suspend selected licenses", permissions=["change"])
    def suspend_licenses(self, request, queryset):
        def suspend(**kwargs):
            return services.license_suspend(reason=f"Suspended by {request.user} in the admin", **kwargs)

        self._apply(request, queryset, "suspended", suspend)

    @admin.action(description="Reinstate selected suspended licenses", permissions=["change"])
    def reinstate_licenses(self, request, queryset):
        self._apply(request, queryset, "reinstated", services.license_reinstate)

    @admin.action(description="Renew selected licenses by 30 days", permissions=["change"])
    def renew_licenses_30(self, request, queryset):
        self._apply(request, queryset, "renewed", lambda **kwargs: services.license_renew(days=30, **kwargs))

    @admin.action(description="Renew selected licenses by 365 days", permissions=["change"])
    def renew_licenses_365(self, request, queryset):
        self._apply(request, queryset, "renewed", lambda **kwargs: services.license_renew(days=365, **kwargs))

    @admin.action(description="Revoke selected licenses (final)", permissions=["change"])
    def revoke_licenses(self, request, queryset):
        def revoke(**kwargs):
            return services.license_revoke(reason=f"Revoked by {request.user} in the admin", **kwargs)

        self._apply(request, queryset, "revoked", revoke)


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
