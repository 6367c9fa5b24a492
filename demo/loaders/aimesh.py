"""Demo AI models, provider keys (pointed at the local fake provider) and versioned prompts."""

import os
import secrets
from datetime import timedelta
from decimal import Decimal

from aimesh.models import AIApiKey, AIModel, AIModelFallback, Prompt, PromptFallbackModel, Provider
from celaest.crypto import encrypt
from demo.loaders.base import DemoRun

FAKE_PROVIDER_URL_ENV = "CELAEST_FAKE_PROVIDER_URL"
FAKE_PROVIDER_URL_DEFAULT = "http://127.0.0.1:9100"


# provider, model_id, display name, capabilities, max in, max out, $/1k in, $/1k out, $/1k cached in, default
_AI_MODELS = (
    (
        Provider.OPENAI,
        "gpt-4o-mini",
        "GPT-4o mini",
        ["chat", "json", "vision", "tools"],
        128_000,
        16_384,
        "0.000150",
        "0.000600",
        "0.000075",
        True,
    ),
    (
        Provider.OPENAI,
        "gpt-4o",
        "GPT-4o",
        ["chat", "json", "vision", "tools"],
        128_000,
        16_384,
        "0.002500",
        "0.010000",
        "0.001250",
        False,
    ),
    (
        Provider.ANTHROPIC,
        "claude-3-5-haiku-latest",
        "Claude 3.5 Haiku",
        ["chat", "json", "tools"],
        200_000,
        8_192,
        "0.000800",
        "0.004000",
        "0.000080",
        True,
    ),
    (
        Provider.ANTHROPIC,
        "claude-sonnet-4-20250514",
        "Claude Sonnet 4",
        ["chat", "json", "vision", "tools"],
        200_000,
        64_000,
        "0.003000",
        "0.015000",
        "0.000300",
        False,
    ),
    (
        Provider.OPENAI,
        "text-embedding-3-small",
        "Text Embedding 3 Small",
        ["embeddings"],
        8_191,
        1,
        "0.000020",
        "0",
        "0",
        False,
    ),
)

# the gateway's fallbacks: model asked for -> models tried after it, in order
_MODEL_FALLBACKS = {
    "claude-sonnet-4-20250514": ("gpt-4o",),
    "gpt-4o": ("claude-sonnet-4-20250514",),
    "claude-3-5-haiku-latest": ("gpt-4o-mini",),
}

# provider, key name, secret prefix, priority, rpm, healthy
_API_KEYS = (
    (Provider.OPENAI, "openai-primary", "sk-demo-", 10, 500, True),
    (Provider.OPENAI, "openai-secondary", "sk-demo-", 20, 200, False),
    (Provider.ANTHROPIC, "anthropic-primary", "sk-ant-demo-", 10, 300, True),
)


_PROMPTS = (
    {
        "slug": "summarize-ticket",
        "version": 1,
        "name": "Support ticket summary",
        "category": "support",
        "description": "Summarizes a support ticket and rates its priority.",
        "system_prompt": "You are a support lead. Summarize tickets in one sentence and rate their priority.",
        "user_template": "Summarize this support ticket:\n\n{{ ticket_text }}",
        "variables": [{"name": "ticket_text", "type": "string", "required": True, "description": "The ticket body."}],
        "preferred_model": "gpt-4o-mini",
        "temperature": Decimal("0.30"),
        "max_output_tokens": 300,
        "minutes_saved_estimate": Decimal("4.00"),
        "is_active": False,
    },
    {
        "slug": "summarize-ticket",
        "version": 2,
        "parent": 1,
        "name": "Support ticket summary",
        "category": "support",
        "description": "v2: answers JSON with sentiment, and weighs the customer's tier.",
        "system_prompt": (
            "You are a support lead. Answer JSON with keys summary, sentiment (positive|neutral|negative) "
            "and priority (low|normal|high). Enterprise customers get one priority level more."
        ),
        "user_template": "Customer tier: {{ customer_tier }}\n\nTicket:\n{{ ticket_text }}",
        "variables": [
            {"name": "ticket_text", "type": "string", "required": True, "description": "The ticket body."},
            {"name": "customer_tier", "type": "string", "required": False, "description": "starter, pro, ..."},
        ],
        "preferred_model": "claude-3-5-haiku-latest",
        "temperature": Decimal("0.20"),
        "max_output_tokens": 400,
        "minutes_saved_estimate": Decimal("5.00"),
        "is_active": True,
    },
    {
        "slug": "extract-invoice",
        "version": 1,
        "name": "Invoice field extraction",
        "category": "finance",
        "description": "Extracts vendor, total, currency and due date from invoice text.",
        "system_prompt": "Extract vendor, total, currency and due_date from the invoice. Answer JSON only.",
        "user_template": "{{ invoice_text }}",
        "variables": [{"name": "invoice_text", "type": "string", "required": True, "description": "OCR text."}],
        "preferred_model": "gpt-4o-mini",
        "temperature": Decimal("0.00"),
        "max_output_tokens": 300,
        "minutes_saved_estimate": Decimal("6.00"),
        "is_active": True,
    },
    {
        "slug": "translate-text",
        "version": 1,
        "name": "Customer message translation",
        "category": "content",
        "description": "Translates customer-facing text, keeping product names.",
        "system_prompt": "Translate into {{ target_language }}. Keep product names and numbers unchanged.",
        "user_template": "{{ text }}",
        "variables": [
            {"name": "text", "type": "string", "required": True, "description": "Text to translate."},
            {"name": "target_language", "type": "string", "required": True, "description": "e.g. Spanish"},
        ],
        "preferred_model": None,
        "temperature": Decimal("0.40"),
        "max_output_tokens": 800,
        "minutes_saved_estimate": Decimal("3.00"),
        "is_active": True,
    },
)


def seed_ai_catalogue(demo: DemoRun) -> None:
    for provider, model_id, display, caps, max_in, max_out, p_in, p_out, p_cached, is_default in _AI_MODELS:
        demo.ai_models[model_id], _ = AIModel.objects.get_or_create(
            provider=provider,
            model_id=model_id,
            defaults={
                "display_name": display,
                "capabilities": caps,
                "max_tokens_input": max_in,
                "max_tokens_output": max_out,
                "cost_per_1k_input": Decimal(p_in),
                "cost_per_1k_output": Decimal(p_out),
                "cost_per_1k_cached_input": Decimal(p_cached),
                "is_default": is_default,
            },
        )

    for model_id, fallbacks in _MODEL_FALLBACKS.items():
        for position, fallback in enumerate(fallbacks):
            AIModelFallback.objects.get_or_create(
                model=demo.ai_models[model_id], fallback=demo.ai_models[fallback], defaults={"position": position}
            )

    base_url = os.environ.get(FAKE_PROVIDER_URL_ENV) or FAKE_PROVIDER_URL_DEFAULT
    for provider, key_name, secret_prefix, priority, rpm, healthy in _API_KEYS:
        secret = secret_prefix + secrets.token_urlsafe(32)
        defaults = {
            "key_encrypted": encrypt(secret),
            "key_hint": secret[-4:],
            "base_url": base_url,
            "priority": priority,
            "rate_limit_rpm": rpm,
            "is_healthy": healthy,
            "usage_count": 0,
            "last_checked_at": demo.now - timedelta(minutes=5),
        }
        if not healthy:
            defaults.update(
                consecutive_failures=3,
                cooldown_until=demo.now + timedelta(minutes=10),
                last_error="429 Too Many Requests: rate limit reached for requests per minute",
            )
        key, _ = AIApiKey.objects.get_or_create(provider=provider, key_name=key_name, defaults=defaults)
        if key.base_url != base_url:
            # The fake provider's address is set per machine: follow the environment.
            key.base_url = base_url
            key.save(update_fields=["base_url", "updated_at"])
        demo.api_keys[key_name] = key

    for spec in _PROMPTS:
        defaults = {
            key: value
            for key, value in spec.items()
            if key not in ("slug", "version", "parent", "preferred_model", "is_active")
        }
        defaults["preferred_model"] = demo.ai_models[spec["preferred_model"]] if spec["preferred_model"] else None
        defaults["parent"] = demo.prompts[(spec["slug"], spec["parent"])] if spec.get("parent") else None
        defaults["created_by"] = demo.staff
        defaults["is_active"] = (
            spec["is_active"] and not Prompt.objects.filter(slug=spec["slug"], is_active=True).exists()
        )
        prompt, _ = Prompt.objects.get_or_create(slug=spec["slug"], version=spec["version"], defaults=defaults)
        demo.prompts[(spec["slug"], spec["version"])] = prompt

    # Each prompt falls back to the other provider's default model when its own has no working key.
    for prompt in demo.prompts.values():
        own = prompt.preferred_model.provider if prompt.preferred_model else Provider.OPENAI
        fallback = next((m for m in demo.ai_models.values() if m.provider != own and m.is_default), None)
        if fallback is not None:
            PromptFallbackModel.objects.get_or_create(prompt=prompt, model=fallback, defaults={"position": 1})
