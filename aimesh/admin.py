"""Admin of the AI mesh catalogue: models, pooled provider keys (write-only) and prompt versions.

Prompt versions can be compared side by side (every content field, changed ones highlighted, and
a line diff of the texts) and the version looked at activated from there.
"""

import difflib
import json
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from celaest.admin import CelaestModelAdmin, ReadOnlyTabularInline, WriteOnlySecretForm, secret_input
from celaest.crypto import encrypt

from .models import AIApiKey, AIModel, Prompt, PromptFallbackModel
from .routing import keys_restore, keys_take_out
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
        updated = keys_restore(keys=queryset)
        self.message_user(request, f"{updated} key(s) marked healthy.", messages.SUCCESS)

    @admin.action(description="Mark selected keys unhealthy (taken out of rotation)", permissions=["change"])
    def mark_unhealthy(self, request, queryset):
        updated = keys_take_out(keys=queryset)
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


# --- comparing prompt versions --------------------------------------------------------------------

#: The fields that make a version what it is, in the order the compare page lists them.
_COMPARED_FIELDS = [
    "name",
    "category",
    "description",
    "is_active",
    "system_prompt",
    "user_template",
    "variables",
    "preferred_model",
    "fallback_models",
    "response_format",
    "temperature",
    "max_output_tokens",
    "minutes_saved_estimate",
]
#: Multi-line fields, also shown as a line diff.
_DIFFED_FIELDS = ["description", "system_prompt", "user_template", "variables", "fallback_models"]
_MULTILINE_FIELDS = set(_DIFFED_FIELDS)


@dataclass(frozen=True)
class FieldComparison:
    name: str
    label: str
    left: str
    right: str
    multiline: bool

    @property
    def changed(self) -> bool:
        return self.left != self.right


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "hunk", "added", "removed" or "context"
    text: str


_DIFF_LINE_KINDS = {"@": "hunk", "+": "added", "-": "removed", " ": "context"}


def _ai_model_label(model) -> str:
    # The provider and model id tell two models with the same display name apart.
    return f"{model} ({model.provider}/{model.model_id})" if model is not None else ""


def _prompt_field_texts(prompt: Prompt) -> dict[str, str]:
    """Each compared field of ``prompt`` as the text shown, and compared, on the compare page.

    Expects ``preferred_model`` selected and ``fallback_entries`` prefetched (with their models,
    in order of position).
    """
    return {
        "name": prompt.name,
        "category": prompt.category,
        "description": prompt.description,
        "is_active": "yes" if prompt.is_active else "no",
        "system_prompt": prompt.system_prompt,
        "user_template": prompt.user_template,
        "variables": json.dumps(prompt.variables, indent=2, ensure_ascii=False, sort_keys=True),
        "preferred_model": _ai_model_label(prompt.preferred_model),
        "fallback_models": "\n".join(
            f"{number}. {_ai_model_label(entry.model)}" for number, entry in enumerate(prompt.fallback_entries.all(), 1)
        ),
        "response_format": prompt.get_response_format_display(),
        "temperature": str(prompt.temperature),
        "max_output_tokens": str(prompt.max_output_tokens),
        "minutes_saved_estimate": str(prompt.minutes_saved_estimate),
    }


def prompt_versions_compared(*, left: Prompt, right: Prompt) -> list[FieldComparison]:
    left_texts, right_texts = _prompt_field_texts(left), _prompt_field_texts(right)
    return [
        FieldComparison(
            name=name,
            label=str(Prompt._meta.get_field(name).verbose_name),
            left=left_texts[name],
            right=right_texts[name],
            multiline=name in _MULTILINE_FIELDS,
        )
        for name in _COMPARED_FIELDS
    ]


def text_diff(before: str, after: str) -> list[DiffLine]:
    """The unified line diff (3 lines of context) from ``before`` to ``after``, without its file headers."""
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm=""))[2:]
    return [DiffLine(kind=_DIFF_LINE_KINDS.get(line[:1], "context"), text=line) for line in lines]


def text_diffs(comparisons: list[FieldComparison], *, left_is_older: bool) -> list[dict]:
    """The line diff, from the older version to the newer, of each changed multi-line field."""
    diffs = []
    for comparison in comparisons:
        if comparison.name not in _DIFFED_FIELDS or not comparison.changed:
            continue
        before, after = (comparison.left, comparison.right) if left_is_older else (comparison.right, comparison.left)
        diffs.append({"label": comparison.label, "lines": text_diff(before, after)})
    return diffs


def _default_counterpart(prompt: Prompt, versions: list[Prompt]) -> Prompt | None:
    """The version ``prompt`` is compared with unless told: its parent, else the version before
    it, else (the first version) the one after it. ``versions``: the slug's others."""
    by_pk = {version.pk: version for version in versions}
    if prompt.parent_id in by_pk:
        return by_pk[prompt.parent_id]
    earlier = [version for version in versions if version.version < prompt.version]
    if earlier:
        return max(earlier, key=lambda version: version.version)
    later = [version for version in versions if version.version > prompt.version]
    return min(later, key=lambda version: version.version) if later else None


@admin.register(Prompt)
class PromptAdmin(CelaestModelAdmin):
    list_display = [
        "slug",
        "version",
        "name",
        "category",
        "preferred_model",
        "temperature",
        "is_active",
        "parent",
        "compare_link",
    ]
    list_filter = ["is_active", "category", "preferred_model__provider"]
    list_select_related = ["preferred_model", "parent"]
    search_fields = ["slug", "name", "category"]
    autocomplete_fields = ["preferred_model", "parent"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    inlines = [PromptFallbackInline, PromptChildrenInline]
    actions = ["new_version", "activate"]
    change_form_template = "admin/aimesh/prompt/change_form.html"
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

    # --- compare versions ---------------------------------------------------------------------------

    def get_urls(self):
        compare = path(
            "<path:object_id>/compare/", self.admin_site.admin_view(self.compare_view), name="aimesh_prompt_compare"
        )
        activate = path(
            "<path:object_id>/compare/activate/",
            self.admin_site.admin_view(self.activate_version_view),
            name="aimesh_prompt_activate_version",
        )
        return [compare, activate, *super().get_urls()]

    @admin.display(description="versions")
    def compare_link(self, obj):
        return format_html('<a href="{}">compare</a>', reverse("admin:aimesh_prompt_compare", args=[obj.pk]))

    def _prompt_to_compare(self, request, object_id) -> Prompt | None:
        queryset = (
            self.get_queryset(request)
            .select_related("preferred_model", "parent", "created_by")
            .prefetch_related(
                Prefetch(
                    "fallback_entries",
                    queryset=PromptFallbackModel.objects.select_related("model").order_by("position", "pk"),
                )
            )
        )
        try:
            return queryset.filter(pk=object_id).first()
        except (ValidationError, ValueError):  # not a UUID
            return None

    def _compare_url(self, prompt_id, with_id=None) -> str:
        url = reverse("admin:aimesh_prompt_compare", args=[prompt_id])
        return f"{url}?{urlencode({'with': str(with_id)})}" if with_id else url

    def _missing_prompt_redirect(self, request, object_id):
        self.message_user(request, f"No prompt version with ID “{object_id}” exists.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:aimesh_prompt_changelist"))

    def compare_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        prompt = self._prompt_to_compare(request, object_id)
        if prompt is None:
            return self._missing_prompt_redirect(request, object_id)
        versions = list(
            self.get_queryset(request)
            .filter(slug=prompt.slug)
            .exclude(pk=prompt.pk)
            .only("pk", "slug", "version", "is_active")
            .order_by("-version")
        )
        requested = request.GET.get("with", "").strip()
        if requested:
            other = self._prompt_to_compare(request, requested)
            refusal = None
            if other is None:
                refusal = f"No prompt version with ID “{requested}” exists."
            elif other.slug != prompt.slug:
                refusal = (
                    f"{other} is a version of another prompt; only versions of {prompt.slug} can be compared with "
                    f"{prompt}."
                )
            elif other.pk == prompt.pk:
                refusal = f"Pick another version of {prompt.slug} to compare {prompt} with."
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                return HttpResponseRedirect(self._compare_url(prompt.pk))
        else:
            counterpart = _default_counterpart(prompt, versions)
            other = self._prompt_to_compare(request, counterpart.pk) if counterpart else None

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Compare {prompt} with {other}" if other else f"Compare {prompt}",
            "original": prompt,
            "other": other,
            "versions": versions,
            "can_activate": self.has_change_permission(request, prompt) and not prompt.is_active,
        }
        if other is not None:
            older, newer = sorted([prompt, other], key=lambda version: version.version)
            comparisons = prompt_versions_compared(left=prompt, right=other)
            context.update(
                fields=comparisons,
                changed_count=sum(comparison.changed for comparison in comparisons),
                older=older,
                newer=newer,
                diffs=text_diffs(comparisons, left_is_older=older.pk == prompt.pk),
            )
        return TemplateResponse(request, "admin/aimesh/prompt/compare.html", context)

    def activate_version_view(self, request, object_id):
        """Activates the version a compare page shows on the left, then goes back to that page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        prompt = self._prompt_to_compare(request, object_id)
        if prompt is None:
            return self._missing_prompt_redirect(request, object_id)
        if prompt.is_active:
            self.message_user(request, f"{prompt} already is the active version.", messages.INFO)
        else:
            prompt_activate(prompt=prompt, user=request.user, source="admin")
            self.message_user(request, f"{prompt} is now the active version of {prompt.slug}.", messages.SUCCESS)
        try:
            with_id = uuid.UUID(request.POST.get("with", ""))
        except ValueError:
            with_id = None
        return HttpResponseRedirect(self._compare_url(prompt.pk, with_id))


from . import admin_fallbacks  # noqa: E402, F401 - registers the gateway fallbacks
