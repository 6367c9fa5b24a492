"""Admin of sessions, user API keys, webhooks, deliveries, system config and feature flags.

Secrets never reach a page: session tokens and API key hashes are not shown at all, webhook
secrets are write-only (a hash prefix identifies them), sensitive config values are masked.
"""

import base64
import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from celaest.admin import (
    MASKED,
    CelaestModelAdmin,
    GeneratedRecordAdminMixin,
    LargeTableAdmin,
    Panel,
    WriteOnlySecretForm,
    changelist_url,
    contribute_panel,
    secret_input,
    truncated,
)
from celaest.admin_display import admin_link, humanised_time, status_badge
from celaest.crypto import encrypt, hash_secret
from celaest.errors import DomainError
from celaest.validation import json_problem
from identity.models import Organization

from .models import FeatureFlag, SystemConfig, UserApiKey, UserSession, Webhook, WebhookDelivery
from .services.api_keys import api_key_revoke
from .services.config import KEEP
from .services.flags import flags_set_enabled
from .services.outbox import webhook_delivery_replay, webhook_recover_failed, webhook_send_test
from .services.sessions import user_session_revoke
from .services.webhooks import WEBHOOK_SECRET_PREFIX, webhook_update, webhooks_disable
from .webhook_targets import WebhookTargetRefused, webhook_target_check

#: How far back the admin's "recover" action looks (the API takes any date).
RECOVER_WINDOW = timedelta(days=7)

MIN_WEBHOOK_SECRET_BYTES = 24  # what webhook_create generates; Standard Webhooks asks for 24 to 64


@admin.register(UserSession)
class UserSessionAdmin(CelaestModelAdmin):
    """Sessions start at login, never here; staff can end them."""

    list_display = ["user", "ip_address", "agent", "is_active", "last_activity_at", "expires_at", "revoked_at"]
    list_filter = ["is_active", "expires_at"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    search_help_text = "User email or exact IP address."
    ip_search_fields = ("ip_address",)
    fields = [
        "user",
        "ip_address",
        "user_agent",
        "device_info",
        "is_active",
        "expires_at",
        "last_activity_at",
        "revoked_at",
        "created_at",
    ]
    readonly_fields = [
        "user",
        "ip_address",
        "user_agent",
        "device_info",
        "last_activity_at",
        "revoked_at",
        "created_at",
    ]
    actions = ["revoke_sessions"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="user agent")
    def agent(self, obj):
        return truncated(obj.user_agent, 50)

    @admin.action(description="Revoke selected sessions", permissions=["change"])
    def revoke_sessions(self, request, queryset):
        sessions = list(queryset.filter(is_active=True))
        for session in sessions:
            user_session_revoke(session=session)
        self.message_user(request, f"{len(sessions)} session(s) revoked.", messages.SUCCESS)


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Live"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(UserApiKey)
class UserApiKeyAdmin(CelaestModelAdmin):
    """Keys are created by their users (the key is shown to them once); staff can revoke them."""

    list_display = [
        "name",
        "prefix",
        "user",
        "usage_count",
        "rate_limit_rpm",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [ApiKeyStateFilter, "user__organization"]
    list_select_related = ["user"]
    search_fields = ["name", "key_prefix", "user__email"]
    fields = [
        "user",
        "name",
        "prefix",
        "scopes",
        "rate_limit_rpm",
        "allowed_models",
        "spend_limit_daily_usd",
        "spend_limit_monthly_usd",
        "tokens_per_minute",
        "max_requests_in_flight",
        "expires_at",
        "usage_count",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "created_at",
    ]
    readonly_fields = ["user", "prefix", "usage_count", "last_used_at", "last_used_ip", "revoked_at", "created_at"]
    actions = ["revoke_keys"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="key", ordering="key_prefix")
    def prefix(self, obj):
        return f"{obj.key_prefix}…"

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        api_keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in api_keys:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"{len(api_keys)} API key(s) revoked.", messages.SUCCESS)


class WebhookForm(WriteOnlySecretForm):
    secret = secret_input(
        label="Signing secret",
        help_text=f"{WEBHOOK_SECRET_PREFIX} followed by base64 of at least {MIN_WEBHOOK_SECRET_BYTES} random bytes "
        "(Standard Webhooks). Stored encrypted and never shown; a new secret replaces the old one at once.",
    )

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        if secret:
            try:
                key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
            except ValueError:
                key = b""
            if not secret.startswith(WEBHOOK_SECRET_PREFIX) or len(key) < MIN_WEBHOOK_SECRET_BYTES:
                raise forms.ValidationError(
                    f"Use {WEBHOOK_SECRET_PREFIX} followed by base64 of at least {MIN_WEBHOOK_SECRET_BYTES} bytes."
                )
        return secret

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhook_target_check(url, require_resolution=False)
        except WebhookTargetRefused as exc:
            raise forms.ValidationError(exc.message) from exc
        return url

    def store_secret(self, secret):
        # Replaced at once, with no grace period for the old one: staff replace a secret after a leak.
        self.instance.secret_encrypted = encrypt(secret)
        self.instance.secret_hash = hash_secret(secret)
        self.instance.previous_secret_encrypted = ""
        self.instance.previous_secret_expires_at = None


@admin.register(Webhook)
class WebhookAdmin(CelaestModelAdmin):
    form = WebhookForm
    exclude = ["secret_encrypted", "previous_secret_encrypted"]  # never in a form, whatever the fieldsets say
    list_display = ["name", "url", "organization", "user", "status", "secret_id", "failing_since", "last_success_at"]
    list_filter = ["status"]
    list_select_related = ["organization", "user"]
    search_fields = ["name", "url", "organization__slug", "user__email"]
    autocomplete_fields = ["organization", "user"]
    readonly_fields = [
        "secret_id",
        "previous_secret_expires_at",
        "failing_since",
        "last_success_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["organization", "user", "name", "url", "events"]}),
        ("Signing", {"fields": ["secret", "secret_id", "previous_secret_expires_at"]}),
        ("Status", {"fields": ["status", "disabled_reason", "failing_since", "last_success_at"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    actions = ["disable_webhooks", "enable_webhooks", "send_test_events", "recover_failed_deliveries"]

    @admin.display(description="secret id")
    def secret_id(self, obj):
        return f"{obj.secret_hash[:12]}…" if obj.secret_hash else "-"

    @admin.action(description="Disable selected webhooks", permissions=["change"])
    def disable_webhooks(self, request, queryset):
        updated = webhooks_disable(webhooks=queryset, reason=f"Disabled by {request.user} in the admin")
        self.message_user(request, f"{updated} webhook(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable selected webhooks", permissions=["change"])
    def enable_webhooks(self, request, queryset):
        webhooks = list(queryset.exclude(status=Webhook.Status.ACTIVE))
        for webhook in webhooks:
            webhook_update(webhook=webhook, status=Webhook.Status.ACTIVE)
        self.message_user(request, f"{len(webhooks)} webhook(s) enabled.", messages.SUCCESS)

    def _each(self, request, webhooks, operation) -> list:
        """Run ``operation`` on each webhook, reporting refusals (e.g. a disabled one) as errors."""
        results = []
        for webhook in webhooks:
            try:
                results.append(operation(webhook))
            except DomainError as exc:
                self.message_user(request, f"{webhook}: {exc.message}", messages.ERROR)
        return results

    @admin.action(description="Send a test event to selected webhooks", permissions=["change"])
    def send_test_events(self, request, queryset):
        sent = self._each(request, queryset, lambda webhook: webhook_send_test(webhook=webhook))
        self.message_user(request, f"Test event queued for {len(sent)} webhook(s).", messages.SUCCESS)

    @admin.action(
        description=f"Recover failed deliveries of the last {RECOVER_WINDOW.days} days", permissions=["change"]
    )
    def recover_failed_deliveries(self, request, queryset):
        since = timezone.now() - RECOVER_WINDOW
        counts = self._each(request, queryset, lambda webhook: webhook_recover_failed(webhook=webhook, since=since))
        self.message_user(request, f"{sum(counts)} failed event(s) queued again.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(GeneratedRecordAdminMixin, LargeTableAdmin):
    list_display = [
        "created_at",
        "webhook",
        "event_type",
        "status",
        "attempt_number",
        "response_status",
        "duration_ms",
        "delivered_at",
        "next_attempt_at",
    ]
    list_filter = ["status"]
    list_select_related = ["webhook"]
    date_hierarchy = "created_at"
    changelist_defer = ("payload", "response_body", "error")
    search_fields = ["event_id__exact", "event_type__exact", "webhook__name__exact", "organization__slug__exact"]
    search_help_text = "Exact event id or type, webhook name or organization slug."
    actions = ["replay_deliveries"]

    def has_replay_permission(self, request):
        return request.user.has_perm("settings_app.change_webhook")

    @admin.action(description="Replay selected deliveries now", permissions=["replay"])
    def replay_deliveries(self, request, queryset):
        replayed = 0
        for delivery in queryset.select_related("webhook"):
            try:
                webhook_delivery_replay(delivery=delivery)
                replayed += 1
            except DomainError as exc:
                self.message_user(request, f"{delivery.event_id}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{replayed} deliveries queued again.", messages.SUCCESS)


class SensitiveSystemConfigForm(forms.ModelForm):
    """For a sensitive entry: the stored value is never sent to the page; blank keeps it."""

    new_value = secret_input(
        label="New value",
        help_text=f"The current value is hidden ({MASKED}). Leave blank to keep it. "
        'JSON, or plain text that is stored as a string (e.g. sk-... or {"user": "a", "password": "b"}).',
    )

    def clean_new_value(self):
        raw = self.cleaned_data["new_value"]
        if raw == "":
            return KEEP
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        except RecursionError:
            raise forms.ValidationError("JSON is nested too deeply.") from None
        if problem := json_problem(value):  # e.g. U+0000, which PostgreSQL's jsonb cannot store
            raise forms.ValidationError(problem)
        return value

    def clean(self):
        cleaned_data = super().clean()
        if not cleaned_data.get("is_sensitive") and cleaned_data.get("new_value", KEEP) is KEEP:
            # Un-marking would put the old secret on the next page: only with a new value.
            self.add_error("is_sensitive", "To make this entry non-sensitive, also enter a new value.")
        return cleaned_data

    def save(self, commit=True):
        new_value = self.cleaned_data.get("new_value", KEEP)
        if new_value is not KEEP:
            self.instance.value = new_value
        return super().save(commit)


@admin.register(SystemConfig)
class SystemConfigAdmin(CelaestModelAdmin):
    list_display = ["key", "shown_value", "is_sensitive", "description_preview", "updated_at", "updated_by"]
    list_filter = ["is_sensitive"]
    list_select_related = ["updated_by"]
    # Never search values: a search would reveal sensitive ones one guess at a time.
    search_fields = ["key", "description"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None and obj.is_sensitive:
            kwargs["form"] = SensitiveSystemConfigForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        value_field = "new_value" if obj is not None and obj.is_sensitive else "value"
        return ["key", value_field, "is_sensitive", "description", "updated_at", "updated_by"]

    def get_readonly_fields(self, request, obj=None):
        # The key is the primary key: "renaming" it in a form would save a second entry.
        return ["key", "updated_at", "updated_by"] if obj is not None else ["updated_at", "updated_by"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="value")
    def shown_value(self, obj):
        if obj.is_sensitive:
            return MASKED
        return truncated(json.dumps(obj.value, ensure_ascii=False), 80)

    @admin.display(description="description")
    def description_preview(self, obj):
        return truncated(obj.description, 80)


@admin.register(FeatureFlag)
class FeatureFlagAdmin(CelaestModelAdmin):
    list_display = ["flag_key", "is_enabled", "target_type", "target_percentage", "updated_at"]
    list_filter = ["is_enabled", "target_type"]
    search_fields = ["flag_key", "description"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["enable_flags", "disable_flags"]

    @admin.action(description="Enable selected flags", permissions=["change"])
    def enable_flags(self, request, queryset):
        updated = flags_set_enabled(flags=queryset, enabled=True)
        self.message_user(request, f"{updated} flag(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected flags", permissions=["change"])
    def disable_flags(self, request, queryset):
        updated = flags_set_enabled(flags=queryset, enabled=False)
        self.message_user(request, f"{updated} flag(s) disabled.", messages.SUCCESS)


# --- the organization page: webhooks and API keys ----------------------------------------------------

#: how many webhooks and API keys the organization page lists
ORGANIZATION_ROWS = 10


def organization_integration_panels(request, organization) -> list[Panel]:
    webhooks = Webhook.objects.filter(organization=organization).order_by("status", "name")[:ORGANIZATION_ROWS]
    keys = (
        UserApiKey.objects.filter(user__organization=organization, revoked_at__isnull=True)
        .select_related("user")
        .order_by("-last_used_at")[:ORGANIZATION_ROWS]
    )
    return [
        Panel(
            title="Webhooks",
            columns=["Webhook", "Status", "Failing since", "Last success"],
            rows=[
                [
                    admin_link(webhook, webhook.name, limit=24),
                    status_badge(webhook.status, webhook.get_status_display()),
                    humanised_time(webhook.failing_since) if webhook.failing_since else "—",
                    humanised_time(webhook.last_success_at),
                ]
                for webhook in webhooks
            ],
            more_url=changelist_url(Webhook, organization__id__exact=organization.pk),
            empty="No webhook.",
        ),
        Panel(
            title="API keys in use",
            columns=["Key", "Name", "User", "Last used"],
            rows=[
                [
                    admin_link(key, f"{key.key_prefix}…"),
                    key.name,
                    admin_link(key.user, key.user.email, limit=24),
                    humanised_time(key.last_used_at),
                ]
                for key in keys
            ],
            more_url=changelist_url(UserApiKey, user__organization__id__exact=organization.pk),
            empty="No live API key.",
        ),
    ]


contribute_panel(Organization, organization_integration_panels, order=60)
