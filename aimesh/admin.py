"""Admin of the AI mesh catalogue: models, pooled provider keys (write-only) and prompt versions."""

from django.contrib import admin, messages
from django.utils import timezone

from celaest.admin import CelaestModelAdmin, ReadOnlyTabularInline, WriteOnlySecretForm, secret_input
from celaest.crypto import encrypt

from .models import AIApiKey, AIModel, Prompt, PromptFallbackModel
from .services import prompt_activate, prompt_new_version


@admin.register(AIModel)
class AIModelAdmin(CelaestModelAdmin):
    list_display = [
        "display_name",
        "provider",
        "model_id",
        "cost_per_1k_input",
        "cost_per_1k_output",
        "max_tokens_input",
        "is_default",
        "is_active",
    ]
    list_filter = ["provider", "is_default", "is_active"]
    search_fields = ["display_name", "model_id"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["provider", "model_id", "display_name", "capabilities", "is_default", "is_active"]}),
        ("Limits", {"fields": ["max_tokens_input", "max_tokens_output"]}),
        (
            "Prices (USD per 1k tokens)",
            {"fields": ["cost_per_1k_input", "cost_per_1k_output", "cost_per_1k_cached_input"]},
        ),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]


class AIApiKeyForm(WriteOnlySecretForm):
    secret = secret_input(label="API key", help_text="Stored encrypted; only its last 4 characters are ever shown.")

    def store_secret(self, secret):
        self.instance.key_encrypted = encrypt(secret)
        self.instance.key_hint = secret[-4:]


@admin.register(AIApiKey)
class AIApiKeyAdmin(CelaestModelAdmin):
    form = AIApiKeyForm
    exclude = ["key_encrypted"]  # never in a form, whatever the fieldsets say
    list_display = [
        "key_name",
        "provider",
        "hint",
        "is_active",
        "is_healthy",
        "priority",
        "rate_limit_rpm",
        "usage_count",
        "consecutive_failures",
        "cooldown_until",
        "last_used_at",
    ]
    list_filter = ["provider", "is_active", "is_healthy"]
    search_fields = ["key_name", "key_hint"]
    readonly_fields = [
        "hint",
        "usage_count",
        "consecutive_failures",
        "last_used_at",
        "last_checked_at",
        "last_error",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["provider", "key_name", "secret", "hint", "base_url"]}),
        ("Routing", {"fields": ["is_active", "is_healthy", "priority", "rate_limit_rpm", "cooldown_until"]}),
        (
            "Usage and health",
            {"fields": ["usage_count", "consecutive_failures", "last_used_at", "last_checked_at", "last_error"]},
        ),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    actions = ["mark_healthy", "mark_unhealthy"]

    @admin.display(description="key", ordering="key_hint")
    def hint(self, obj):
        return f"…{obj.key_hint}" if obj.key_hint else "-"

    @admin.action(description="Mark selected keys healthy (clear failures and cooldown)", permissions=["change"])
    def mark_healthy(self, request, queryset):
        updated = queryset.update(
            is_healthy=True, consecutive_failures=0, cooldown_until=None, last_error="", updated_at=timezone.now()
        )
        self.message_user(request, f"{updated} key(s) marked healthy.", messages.SUCCESS)

    @admin.action(description="Mark selected keys unhealthy (taken out of rotation)", permissions=["change"])
    def mark_unhealthy(self, request, queryset):
        updated = queryset.update(is_healthy=False, updated_at=timezone.now())
        self.message_user(request, f"{updated} key(s) marked unhealthy.", messages.SUCCESS)


class PromptChildrenInline(ReadOnlyTabularInline):
    model = Prompt
    fk_name = "parent"
    fields = ["slug", "version", "name", "is_active", "created_at"]
    readonly_fields = fields
    verbose_name = "later version"
    verbose_name_plural = "versions evolved from this one"


class PromptFallbackInline(admin.TabularInline):
    model = PromptFallbackModel
    fk_name = "prompt"
    fields = ["position", "model"]
    autocomplete_fields = ["model"]
    extra = 0
    verbose_name = "fallback model"
    verbose_name_plural = "fallback models (tried in order of position)"


@admin.register(PromptFallbackModel)
class PromptFallbackModelAdmin(CelaestModelAdmin):
    list_display = ["prompt", "position", "model"]
    list_select_related = ["prompt", "model"]
    search_fields = ["prompt__slug", "model__model_id"]
    autocomplete_fields = ["prompt", "model"]


@admin.register(Prompt)
class PromptAdmin(CelaestModelAdmin):
    list_display = ["slug", "version", "name", "category", "preferred_model", "temperature", "is_active", "parent"]
    list_filter = ["is_active", "category", "preferred_model__provider"]
    list_select_related = ["preferred_model", "parent"]
    search_fields = ["slug", "name", "category"]
    autocomplete_fields = ["preferred_model", "parent"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [PromptFallbackInline, PromptChildrenInline]
    actions = ["new_version", "activate"]
    fieldsets = [
        (None, {"fields": ["slug", "version", "name", "category", "description", "is_active", "parent"]}),
        ("Prompt", {"fields": ["system_prompt", "user_template", "variables"]}),
        (
            "Model",
            {
                "fields": [
                    "preferred_model",
                    "response_format",
                    "temperature",
                    "max_output_tokens",
                    "minutes_saved_estimate",
                ]
            },
        ),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="New version of each selected prompt (copied, inactive)", permissions=["add"])
    def new_version(self, request, queryset):
        created = [prompt_new_version(prompt=prompt, user=request.user, source="admin") for prompt in queryset]
        names = ", ".join(str(prompt) for prompt in created)
        self.message_user(request, f"Created {names}.", messages.SUCCESS)

    @admin.action(description="Activate the selected version (one per prompt)", permissions=["change"])
    def activate(self, request, queryset):
        if queryset.values("slug").distinct().count() != queryset.count():
            self.message_user(request, "Select at most one version of each prompt.", messages.ERROR)
            return
        for prompt in queryset:
            prompt_activate(prompt=prompt, user=request.user, source="admin")
        self.message_user(request, f"Activated {queryset.count()} version(s).", messages.SUCCESS)
