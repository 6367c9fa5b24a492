"""Prompt versions, variable rendering and model choice.

Templates use ``{{ name }}`` placeholders. Rendering is one pass of plain substitution: a value
is inserted as text and never evaluated, looked into or rendered again, so a variable holding
``{{ other }}`` or ``{{ x.__class__ }}`` stays literal (no template injection).
"""

import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max

from aimesh.models import AIModel, AIModelFallback, Prompt, PromptFallbackModel, ResponseFormat
from audit.services import audit_record
from celaest.errors import InvalidInput, NotFound
from celaest.readcache import ReadCache

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CHARS_PER_TOKEN = 4
_COPIED_FIELDS = (
    "name", "category", "description", "system_prompt", "user_template", "variables", "preferred_model_id",
    "temperature", "max_output_tokens", "minutes_saved_estimate", "response_format",
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str

    @property
    def estimated_tokens(self) -> int:
        return estimate_tokens(self.system) + estimate_tokens(self.user)


# -- versions --------------------------------------------------------------------------------------


def prompt_get(*, slug: str, version: int | None = None) -> Prompt:
    """The version callers asked for, or the slug's active version."""
    queryset = Prompt.objects.filter(slug=slug).select_related("preferred_model")
    found = queryset.filter(version=version).first() if version is not None else queryset.filter(is_active=True).first()
    if found is None:
        what = f"version {version} of prompt {slug!r}" if version is not None else f"an active prompt {slug!r}"
        raise NotFound(f"There is no {what}.", code="prompt_not_found")
    return found


@transaction.atomic
def prompt_new_version(*, prompt: Prompt, user=None, changes: dict | None = None, source: str = "") -> Prompt:
    """A new (inactive) version copying ``prompt``: ``parent`` is it, ``version`` the slug's next."""
    # Locking the slug's versions numbers concurrent new versions one after the other.
    list(Prompt.objects.select_for_update().filter(slug=prompt.slug).values_list("pk", flat=True))
    next_version = (Prompt.objects.filter(slug=prompt.slug).aggregate(top=Max("version"))["top"] or 0) + 1
    values = {name: getattr(prompt, name) for name in _COPIED_FIELDS}
    values.update(changes or {})
    created = Prompt.objects.create(
        slug=prompt.slug, version=next_version, parent=prompt, is_active=False, created_by=user, **values
    )
    PromptFallbackModel.objects.bulk_create(
        PromptFallbackModel(prompt=created, model_id=entry.model_id, position=entry.position)
        for entry in prompt.fallback_entries.all()
    )
    audit_record(
        action="prompt.versioned",
        resource=created,
        changes={"version": [prompt.version, next_version]},
        user=user,
        source=source,
    )
    return created


@transaction.atomic
def prompt_activate(*, prompt: Prompt, user=None, source: str = "") -> Prompt:
    """Make ``prompt`` the version callers get; the slug's other versions stop being active."""
    versions = list(Prompt.objects.select_for_update().filter(slug=prompt.slug))
    previous = next((p for p in versions if p.is_active), None)
    if previous is not None and previous.pk == prompt.pk:
        return prompt
    Prompt.objects.filter(slug=prompt.slug, is_active=True).update(is_active=False)
    Prompt.objects.filter(pk=prompt.pk).update(is_active=True)
    prompt.is_active = True
    audit_record(
        action="prompt.activated",
        resource=prompt,
        changes={"active_version": [previous.version if previous else None, prompt.version]},
        user=user,
        source=source,
    )
    return prompt


# -- rendering -------------------------------------------------------------------------------------


def _declared(prompt: Prompt) -> dict[str, dict]:
    return {item["name"]: item for item in (prompt.variables or []) if isinstance(item, dict) and "name" in item}


def prompt_render(*, prompt: Prompt, variables: dict | None = None, input_text: str = "") -> RenderedPrompt:
    """The prompt's messages for ``variables`` (validated against its declarations), or for a
    plain ``input_text`` when the prompt takes one text (its single variable, or appended)."""
    declared = _declared(prompt)
    values = dict(variables or {})
    if input_text and not values:
        required = [name for name, item in declared.items() if item.get("required", True)]
        if len(declared) == 1:
            values = {next(iter(declared)): input_text}
        elif required:
            raise InvalidInput(
                "This prompt takes variables, not a plain input text.",
                code="variables_required",
                details={"variables": sorted(declared)},
            )
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise InvalidInput("Unknown variables for this prompt.", code="unknown_variables", details={"unknown": unknown})
    for name, item in declared.items():
        if name not in values and "default" in item:
            values[name] = item["default"]
    missing = sorted(name for name, item in declared.items() if item.get("required", True) and name not in values)
    if missing:
        raise InvalidInput("Required variables are missing.", code="missing_variables", details={"missing": missing})
    bad = sorted(name for name, value in values.items() if not isinstance(value, str | int | float | bool))
    if bad:
        raise InvalidInput("Variables must be strings or numbers.", code="invalid_variables", details={"invalid": bad})

    def substitute(match: re.Match) -> str:
        value = values.get(match.group(1))
        return "" if value is None else str(value)

    user = PLACEHOLDER.sub(substitute, prompt.user_template or "")
    if input_text and not declared:
        user = f"{user}\n\n{input_text}" if user else input_text
    return RenderedPrompt(system=PLACEHOLDER.sub(substitute, prompt.system_prompt or ""), user=user)


# -- model choice ----------------------------------------------------------------------------------


def needed_capabilities(*, json_mode: bool) -> set[str]:
    return {"chat", "json"} if json_mode else {"chat"}


def _has(model: AIModel, capabilities: set[str]) -> bool:
    return capabilities.issubset(set(model.capabilities or []))


#: active models by the name callers give: read by every task and gateway request
_models_by_name = ReadCache("ai-models-by-name").watch(AIModel)


def _model_named(name: str) -> AIModel | None:
    queryset = AIModel.objects.filter(is_active=True)
    if "/" in name:
        provider, _, model_id = name.partition("/")
        return queryset.filter(provider=provider, model_id=model_id).first() or queryset.filter(model_id=name).first()
    return queryset.filter(model_id=name).order_by("-is_default", "provider").first()


def model_by_name(*, name: str) -> AIModel:
    """An active model by its model id (``gpt-4o-mini``) or ``provider/model_id``.
    Shared by the process's threads: read it, don't change it."""
    found = _models_by_name.get(name, lambda: _model_named(name))
    if found is None:
        raise InvalidInput(f"There is no active model {name!r}.", code="model_not_found", details={"model": name})
    return found


#: each model's active gateway fallbacks, in order: read by every gateway call
_fallbacks = ReadCache("ai-model-fallbacks").watch(AIModel, AIModelFallback)


def model_fallbacks(*, model: AIModel) -> list[AIModel]:
    """The active models to try, in order, when no key of ``model`` can answer a gateway call.
    Shared by the process's threads: read them, don't change them."""

    def load():
        entries = AIModelFallback.objects.filter(model=model, fallback__is_active=True).select_related("fallback")
        return [entry.fallback for entry in entries.order_by("position", "pk")]

    return _fallbacks.get(model.pk, load)


def _larger_model(*, capabilities: set[str], tokens: int) -> AIModel | None:
    fitting = [
        model
        for model in AIModel.objects.filter(is_active=True, max_tokens_input__gte=tokens).order_by(
            "-is_default", "max_tokens_input", "cost_per_1k_input"
        )
        if _has(model, capabilities)
    ]
    return fitting[0] if fitting else None


def models_for(
    *, prompt: Prompt | None, requested: AIModel | None, json_mode: bool, estimated_tokens: int
) -> list[AIModel]:
    """The models to try in order: the requested one, else the prompt's preferred model, else the
    default model with the needed capability; then the prompt's fallbacks. A prompt too long for
    the first choice moves to the smallest model that fits, or fails clearly."""
    capabilities = needed_capabilities(json_mode=json_mode)
    first = requested
    if first is None and prompt is not None and prompt.preferred_model and prompt.preferred_model.is_active:
        first = prompt.preferred_model
    if first is None:
        defaults = [
            m for m in AIModel.objects.filter(is_active=True, is_default=True).order_by("pk") if _has(m, capabilities)
        ]
        first = defaults[0] if defaults else None
    if first is None:
        raise InvalidInput(
            "No active model offers what this request needs.",
            code="no_model_available",
            details={"capabilities": sorted(capabilities)},
        )
    if estimated_tokens > first.max_tokens_input:
        larger = None if requested is not None else _larger_model(capabilities=capabilities, tokens=estimated_tokens)
        if larger is None:
            raise InvalidInput(
                "The input is too long for the model.",
                code="input_too_large",
                details={"estimated_tokens": estimated_tokens, "max_tokens_input": first.max_tokens_input},
            )
        first = larger
    chosen = [first]
    if prompt is not None:
        for entry in prompt.fallback_entries.select_related("model").order_by("position"):
            model = entry.model
            if (
                model.is_active
                and model.pk not in {m.pk for m in chosen}
                and model.max_tokens_input >= estimated_tokens
            ):
                chosen.append(model)
    return chosen


def prompt_json_mode(prompt: Prompt | None) -> bool:
    return prompt is not None and prompt.response_format == ResponseFormat.JSON
