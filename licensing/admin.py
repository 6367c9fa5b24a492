"""Admin of subscription plans, licenses (with suspend / reinstate / revoke) and usage logs."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers
from unfold.decorators import action
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from celaest.admin import (
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    ObjectOperationMixin,
    Panel,
    ReasonForm,
    SoftDeleteAdminMixin,
    SoftDeleteModelForm,
    changelist_url,
    contribute_panel,
)
from celaest.admin_display import admin_link, format_money, humanised_time, short_key, status_badge, usage_meter
from celaest.net import client_ip
from identity.models import Organization

from . import selectors, services
from .api.serializers import validate_entitlements
from .models import License, LicenseUsageLog, MachineScheme, OverageAllowance, SubscriptionPlan


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(CelaestModelAdmin):
    list_display = ["name", "code", "price_monthly", "price_yearly", "is_active", "sort_order"]
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


#: the limits a license may override, in the order its form lists them
LIMIT_FIELDS = sorted(selectors.PLAN_LIMIT_KEYS)
UNLIMITED = "unlimited"
#: the license's monthly AI budget in USD among its limits (``operations.budgets.LICENSE_BUDGET_LIMIT``,
#: which reads it; licensing sits below operations): an amount, stored as text ("250.00"), never a float
AI_BUDGET_LIMIT = "ai_usd_per_month"
CENT = Decimal("0.01")


def _limit_field(key: str) -> forms.CharField:
    return forms.CharField(
        label=key.replace("_", " ").capitalize().replace("Ai ", "AI "),
        required=False,
        max_length=20,
        widget=UnfoldAdminTextInputWidget,
        help_text=f'Blank: the plan\'s. A whole number, or "{UNLIMITED}".',
    )


def _ai_budget_field() -> forms.CharField:
    return forms.CharField(
        label="AI budget (USD per month)",
        required=False,
        max_length=20,
        widget=UnfoldAdminTextInputWidget,
        help_text=f'Blank: the plan\'s. An amount in USD of 0 or more with at most two decimals, or "{UNLIMITED}".',
    )


def ai_budget_parse(raw: str):
    """The AI budget typed in the form: ``...`` (blank: the plan's), None (unlimited) or the
    amount as text with two decimals. ``ValidationError`` for anything else."""
    raw = (raw or "").strip().lower()
    if raw == "":
        return ...
    if raw == UNLIMITED:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:
        raise forms.ValidationError(f'An amount of 0 or more with at most two decimals (250.00), or "{UNLIMITED}".')
    return str((amount + 0).quantize(CENT))


class _LicenseAdminForm(SoftDeleteModelForm):
    """Custom limits as one field per limit (blank keeps the plan's), not a JSON box. The form only
    reads them (``custom_limits``); the admin saves them through the licensing service."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        custom = self.instance.custom_limits or {}
        for key in [*LIMIT_FIELDS, AI_BUDGET_LIMIT]:
            name = f"limit_{key}"
            if name in self.fields and key in custom:
                self.initial[name] = UNLIMITED if custom[key] is None else custom[key]
        self.custom_limits = dict(custom)

    def _clean_limit(self, key):
        raw = (self.cleaned_data.get(f"limit_{key}") or "").strip().lower()
        if raw == "":
            return ...
        if raw == UNLIMITED:
            return None
        if not raw.isdigit():
            raise forms.ValidationError(f'A whole number of 0 or more, or "{UNLIMITED}".')
        return int(raw)

    def clean(self):
        cleaned_data = super().clean()
        editable = [key for key in [*LIMIT_FIELDS, AI_BUDGET_LIMIT] if f"limit_{key}" in self.fields]
        if not editable:
            return cleaned_data
        limits = {key: value for key, value in (self.instance.custom_limits or {}).items() if key not in editable}
        for key in editable:
            try:
                if key == AI_BUDGET_LIMIT:
                    value = ai_budget_parse(self.cleaned_data.get(f"limit_{key}"))
                else:
                    value = self._clean_limit(key)
            except forms.ValidationError as error:
                self.add_error(f"limit_{key}", error)
                continue
            if value is not ...:
                limits[key] = value
        self.custom_limits = limits
        return cleaned_data

    def clean_status(self):
        status = self.cleaned_data["status"]
        if self.instance._state.adding and status not in (License.Status.ACTIVE, License.Status.TRIAL):
            raise forms.ValidationError("A new license is active or trial.")
        return status


# One form field per limit the plan may set, declared on the class so the admin's fieldsets name them.
LicenseAdminForm = type(
    "LicenseAdminForm",
    (_LicenseAdminForm,),
    {**{f"limit_{key}": _limit_field(key) for key in LIMIT_FIELDS}, f"limit_{AI_BUDGET_LIMIT}": _ai_budget_field()},
)


class RenewForm(ReasonForm):
    days = forms.TypedChoiceField(
        choices=[(30, "30 days"), (90, "90 days"), (365, "365 days")],
        coerce=int,
        initial=365,
        widget=UnfoldAdminSelectWidget,
        help_text="From the current expiry, or from now if it has passed.",
    )
    field_order = ["days", "reason"]


PLANS = ""  # a choice meaning "the plan's value" (no override)


class LicensePolicyForm(ReasonForm):
    """The license's overrides of its plan's machine policy (blank: the plan's), as
    ``POST /api/v1/licenses/{id}/policy`` takes them, with why they change."""

    machine_scheme = forms.ChoiceField(required=False, widget=UnfoldAdminSelectWidget)
    overage_allowance = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, widget=UnfoldAdminSelectWidget
    )
    heartbeat_window_seconds = forms.IntegerField(
        label="Heartbeat window (seconds)",
        required=False,
        min_value=0,
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="Blank: the plan's. 0: no heartbeat for this license.",
    )
    entitlements = forms.CharField(
        label="Extra entitlements",
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text="Codes on top of the plan's features, separated by commas.",
    )
    field_order = ["machine_scheme", "overage_allowance", "heartbeat_window_seconds", "entitlements", "reason"]

    def __init__(self, *args, license: License, **kwargs):
        plan = license.plan
        kwargs.setdefault(
            "initial",
            {
                "machine_scheme": license.machine_scheme or PLANS,
                "overage_allowance": license.overage_allowance or PLANS,
                "heartbeat_window_seconds": license.heartbeat_window_seconds,
                "entitlements": ", ".join(license.entitlements or []),
            },
        )
        super().__init__(*args, **kwargs)
        self.license = license
        self.fields["machine_scheme"].choices = [
            (PLANS, f"The plan's ({plan.get_machine_scheme_display()})"),
            *MachineScheme.choices,
        ]
        self.fields["overage_allowance"].choices = [
            (PLANS, f"The plan's ({plan.get_overage_allowance_display()})"),
            *OverageAllowance.choices,
        ]

    def clean_machine_scheme(self):
        return self.cleaned_data["machine_scheme"] or None

    def clean_entitlements(self):
        codes = [code.strip() for code in self.cleaned_data["entitlements"].split(",") if code.strip()]
        try:
            return validate_entitlements(codes)
        except serializers.ValidationError as error:
            raise forms.ValidationError(error.detail) from None

    def _current(self, field: str):
        value = getattr(self.license, field)
        if field == "entitlements":
            return list(value or [])
        return value or None if field == "machine_scheme" else value

    def clean(self):
        cleaned_data = super().clean()
        if not self.errors:
            # what ``license_policy_set`` is given: the overrides that differ from the license's
            cleaned_data["changes"] = {
                field: cleaned_data[field]
                for field in services.POLICY_FIELDS
                if cleaned_data[field] != self._current(field)
            }
        return cleaned_data


#: the limits a license page measures this period's usage against: (limit key, usage log field, label)
METERED_LIMITS = [
    ("ai_requests_per_month", "ai_requests_count", "AI requests"),
    ("tokens_per_month", "tokens", "Tokens"),
]


def ai_budget(limits: dict) -> Decimal | None:
    """The AI budget among effective ``limits`` as an amount (None: no budget, or not a number)."""
    try:
        return Decimal(str(limits[AI_BUDGET_LIMIT]))
    except (KeyError, InvalidOperation):
        return None


def _seconds(value) -> str:
    return "none" if not value else f"{value:,} s"


def _machines(limits: dict, *, missing: str = "unlimited") -> str:
    if "max_machines" not in limits:
        return missing
    return "unlimited" if limits["max_machines"] is None else f"{limits['max_machines']:,}"


def _codes(codes) -> str:
    return ", ".join(map(str, codes)) if codes else "—"


def policy_panel(license: License) -> Panel:
    """The license's machine policy: the plan's value, the license's override, and what is in force
    (``selectors.license_policy``), with what billing says of its payments."""
    plan, policy = license.plan, selectors.license_policy(license=license)
    overage = {choice.value: choice.label for choice in OverageAllowance}
    plan_features = plan.features if isinstance(plan.features, list) else list(plan.features or {})
    overage_applies = policy.machine_ceiling != policy.max_machines
    return Panel(
        title="Machine policy",
        columns=["", "Plan", "This license", "In force"],
        rows=[
            [
                "Machine scheme",
                plan.get_machine_scheme_display(),
                license.get_machine_scheme_display() if license.machine_scheme else "—",
                MachineScheme(policy.machine_scheme).label,
            ],
            [
                "Overage allowance",
                plan.get_overage_allowance_display(),
                license.get_overage_allowance_display() if license.overage_allowance else "—",
                overage.get(policy.overage_allowance, f"{policy.overage_allowance} %"),
            ],
            [
                "Heartbeat window",
                _seconds(plan.heartbeat_window_seconds),
                "—" if license.heartbeat_window_seconds is None else _seconds(license.heartbeat_window_seconds),
                _seconds(policy.heartbeat_window_seconds),
            ],
            ["Entitlements", _codes(plan_features), _codes(license.entitlements), _codes(policy.entitlements)],
            [
                "Machines at most",
                _machines(plan.limits or {}),
                _machines(license.custom_limits or {}, missing="—"),
                _machines({"max_machines": policy.machine_ceiling}) + (" with the overage" if overage_applies else ""),
            ],
        ],
        facts=[("Billing state", status_badge(license.billing_state, license.get_billing_state_display()))],
        actions=[("Change the policy", reverse("admin:licensing_license_policy_one", args=[license.pk]))],
        wide=True,
    )


@admin.register(License)
class LicenseAdmin(ObjectOperationMixin, SoftDeleteAdminMixin, CelaestModelAdmin):
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
        (None, {"fields": ["license_key", "organization", "plan", "expires_at", "notes"]}),
        ("Custom limits", {"fields": [*[f"limit_{key}" for key in LIMIT_FIELDS], f"limit_{AI_BUDGET_LIMIT}"]}),
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
    # The same, one license at a time: buttons on its page that ask why (ObjectOperationMixin).
    actions_detail = ["suspend_one", "reinstate_one", "renew_one", "revoke_one", "policy_one"]

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        license = License.all_objects.filter(pk=object_id).only("status").first()
        if license is None:
            return []
        allowed = {
            License.Status.ACTIVE: {"suspend_one", "renew_one", "revoke_one", "policy_one"},
            License.Status.TRIAL: {"suspend_one", "renew_one", "revoke_one", "policy_one"},
            License.Status.SUSPENDED: {"reinstate_one", "renew_one", "revoke_one", "policy_one"},
            License.Status.EXPIRED: {"renew_one", "revoke_one", "policy_one"},
        }.get(license.status, set())
        return [item for item in actions if item.action_name.removeprefix("licensing_license_") in allowed]

    def _who(self, request) -> dict:
        return {"actor": request.user, "source": "admin", "ip_address": client_ip(request)}

    @action(description="Suspend", url_path="suspend", permissions=["change"], icon="pause_circle")
    def suspend_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Suspend license",
            button="Suspend",
            explanation="Validation answers SUSPENDED until the license is reinstated.",
            operation=lambda license, data: services.license_suspend(
                license=license, reason=data["reason"], **self._who(request)
            ),
        )

    @action(description="Reinstate", url_path="reinstate", permissions=["change"], icon="play_circle")
    def reinstate_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Reinstate license",
            button="Reinstate",
            explanation="The license returns to the status it had before its suspension.",
            operation=lambda license, data: services.license_reinstate(license=license, **self._who(request)),
        )

    @action(description="Renew", url_path="renew", permissions=["change"], icon="event_repeat")
    def renew_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Renew license",
            button="Renew",
            form_class=RenewForm,
            operation=lambda license, data: services.license_renew(
                license=license, days=data["days"], **self._who(request)
            ),
        )

    @action(description="Revoke", url_path="revoke", permissions=["change"], icon="block")
    def revoke_one(self, request, object_id):
        return self.object_operation_view(
            request,
            object_id,
            title="Revoke license",
            button="Revoke",
            danger=True,
            explanation="Final: validation answers REVOKED, and the license cannot be reinstated or renewed.",
            operation=lambda license, data: services.license_revoke(
                license=license, reason=data["reason"], **self._who(request)
            ),
        )

    @action(description="Policy", url_path="policy", permissions=["change"], icon="tune")
    def policy_one(self, request, object_id):
        license = self.get_object(request, unquote(str(object_id)))
        return self.object_operation_view(
            request,
            object_id,
            title="Machine policy",
            button="Save policy",
            explanation="Overrides of the plan's machine policy for this license (blank: the plan's); "
            "validation applies them at once.",
            form_class=lambda data: LicensePolicyForm(data, license=license),
            operation=lambda license, data: services.license_policy_set(
                license=license, changes=data["changes"], **self._who(request)
            ),
        )

    def get_panels(self, request, obj):
        limits = selectors.license_effective_limits(license=obj)
        today = timezone.now().date()
        period = (
            LicenseUsageLog.objects.filter(license=obj, period_start__lte=today, period_end__gte=today)
            .order_by("-period_start")
            .first()
        )
        used = {
            "ai_requests_count": period.ai_requests_count if period else 0,
            "tokens": (period.tokens_input + period.tokens_output) if period else 0,
        }
        usage = Panel(
            title="Limits and usage this period",
            facts=[(label, usage_meter(used[field], limits.get(key))) for key, field, label in METERED_LIMITS]
            + [
                ("Period", f"{period.period_start} – {period.period_end}" if period else "no usage yet"),
                (
                    "AI cost this period",
                    usage_meter(
                        period.calculated_cost if period else Decimal("0"),
                        ai_budget(limits),
                        shown=lambda amount: format_money(amount, "USD"),
                    ),
                ),
                *[
                    (key.replace("_", " ").capitalize(), "unlimited" if value is None else f"{value:,}")
                    for key, value in sorted(limits.items())
                    if key not in {key for key, _field, _label in METERED_LIMITS} and isinstance(value, int | None)
                ],
                ("Custom limits", ", ".join(sorted(obj.custom_limits)) if obj.custom_limits else "none (the plan's)"),
            ],
            more_url=changelist_url(LicenseUsageLog, license__id__exact=obj.pk),
            more_label="Usage history",
        )
        summary = Panel(
            title="License",
            facts=[
                ("Key", short_key(obj.license_key, keep=14)),
                ("Status", status_badge(obj.status, obj.get_status_display())),
                ("Organization", admin_link(obj.organization)),
                ("Plan", admin_link(obj.plan)),
                ("Expires", humanised_time(obj.expires_at)),
                ("Issued", humanised_time(obj.issued_at)),
                ("Status reason", obj.status_reason or "—"),
            ],
        )
        return [summary, usage, policy_panel(obj), *super().get_panels(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return [*readonly, "license_key", "status_reason"]
        return [*readonly, *self.fields_set_by_services]

    def save_model(self, request, obj, form, change):
        custom_limits = getattr(form, "custom_limits", obj.custom_limits)
        if change:
            super().save_model(request, obj, form, change)
            # Custom limits through the service: locked, audited limit by limit.
            obj.custom_limits = services.license_custom_limits_set(
                license=obj, custom_limits=custom_limits, **self._who(request)
            ).custom_limits
            return
        # A new license is issued by the service: a fresh key, the seat limit, audit and event.
        issued = services.license_issue(
            organization=obj.organization,
            plan=obj.plan,
            status=obj.status,
            expires_at=obj.expires_at,
            custom_limits=custom_limits,
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


#: how many licenses the organization page lists (live ones first)
ORGANIZATION_LICENSE_ROWS = 15


def current_usage(licenses, *, today) -> dict:
    """This period's usage row of each of ``licenses`` (by license id), in one query."""
    rows = LicenseUsageLog.objects.filter(license__in=licenses, period_start__lte=today, period_end__gte=today)
    return {row.license_id: row for row in rows.order_by("period_start")}


def organization_licenses_panel(request, organization) -> Panel:
    licenses = list(
        License.objects.filter(organization=organization)
        .select_related("plan")
        .order_by("status", "-created_at")[:ORGANIZATION_LICENSE_ROWS]
    )
    usage = current_usage(licenses, today=timezone.now().date())
    rows = []
    for license in licenses:
        limit = selectors.license_effective_limits(license=license).get("ai_requests_per_month")
        period = usage.get(license.pk)
        rows.append(
            [
                admin_link(license, limit=20),
                status_badge(license.status, license.get_status_display()),
                license.plan.name,
                humanised_time(license.expires_at),
                usage_meter(period.ai_requests_count if period else 0, limit),
            ]
        )
    return Panel(
        title="Licenses",
        columns=["License", "Status", "Plan", "Expires", "AI requests this period"],
        rows=rows,
        more_url=changelist_url(License, organization__id__exact=organization.pk),
        empty="No license.",
        wide=True,
    )


contribute_panel(Organization, organization_licenses_panel, order=10)


from . import admin_policies  # noqa: E402, F401 - license tokens (licensing/admin_policies.py)
