"""The AI mesh catalogue: models with prices, the pooled provider keys, versioned prompts."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from celaest.db import ChangeAnnouncingManager, TimeStampedModel


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GROQ = "groq", "Groq"
    MISTRAL = "mistral", "Mistral"
    DEEPSEEK = "deepseek", "DeepSeek"
    OPENROUTER = "openrouter", "OpenRouter"
    VLLM = "vllm", "vLLM"
    OLLAMA = "ollama", "Ollama"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"


class AIModel(TimeStampedModel):
    provider = models.CharField(max_length=32, choices=Provider.choices)
    model_id = models.CharField(max_length=200, help_text="The provider's model name, e.g. gpt-4o-mini.")
    display_name = models.CharField(max_length=200)
    capabilities = models.JSONField(default=list, blank=True, help_text='e.g. ["chat", "json", "vision"]')
    max_tokens_input = models.PositiveIntegerField(default=8192)
    max_tokens_output = models.PositiveIntegerField(default=4096)
    cost_per_1k_input = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    cost_per_1k_output = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    cost_per_1k_cached_input = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "ai_models"
        verbose_name = "AI model"
        ordering = ["provider", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_id"], name="ai_models_provider_model_unique"),
            models.CheckConstraint(
                condition=Q(cost_per_1k_input__gte=0, cost_per_1k_output__gte=0, cost_per_1k_cached_input__gte=0),
                name="ai_models_prices_non_negative",
            ),
        ]

    def __str__(self):
        return self.display_name or f"{self.provider}/{self.model_id}"


class AIApiKey(TimeStampedModel):
    """A pooled provider key. The key itself is only stored encrypted (``celaest.crypto``)."""

    provider = models.CharField(max_length=32, choices=Provider.choices)
    key_name = models.CharField(max_length=120)
    key_encrypted = models.TextField()
    key_hint = models.CharField(max_length=12, blank=True, help_text="Last characters, for recognising a key.")
    base_url = models.URLField(max_length=500, blank=True, help_text="For OpenAI-compatible endpoints.")
    is_active = models.BooleanField(default=True)
    is_healthy = models.BooleanField(default=True)
    rate_limit_rpm = models.PositiveIntegerField(default=60)
    usage_count = models.PositiveBigIntegerField(default=0)
    priority = models.IntegerField(default=100, help_text="Lower is tried first.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "ai_api_pool"
        verbose_name = "AI API key"
        verbose_name_plural = "AI API key pool"
        ordering = ["provider", "priority"]
        indexes = [
            models.Index(fields=["is_healthy", "priority"], name="idx_ai_api_pool_health"),
            models.Index(
                fields=["provider", "priority", "last_used_at"],
                name="idx_ai_api_pool_usable",
                condition=Q(is_active=True, is_healthy=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["provider", "key_name"], name="ai_api_pool_provider_name_unique"),
        ]

    def __str__(self):
        return f"{self.provider}:{self.key_name}"


class ResponseFormat(models.TextChoices):
    TEXT = "text", "Text"
    JSON = "json", "JSON object"


class Prompt(TimeStampedModel):
    """One version of a prompt. ``parent`` is the version it evolved from.

    ``variables`` declares the variables the templates use: a list of
    ``{"name": ..., "type": "string", "required": true, "description": ...}``.
    """

    slug = models.SlugField(max_length=120)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=80, blank=True, db_index=True)
    description = models.TextField(blank=True)
    system_prompt = models.TextField(blank=True)
    user_template = models.TextField(blank=True)
    variables = models.JSONField(default=list, blank=True)
    preferred_model = models.ForeignKey(
        AIModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="preferred_by_prompts"
    )
    temperature = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.70"))
    max_output_tokens = models.PositiveIntegerField(default=1024)
    response_format = models.CharField(
        max_length=8,
        choices=ResponseFormat.choices,
        default=ResponseFormat.TEXT,
        help_text="json: the model is asked for a JSON object, parsed into the task's output_json.",
    )
    fallback_models = models.ManyToManyField(
        AIModel,
        through="PromptFallbackModel",
        related_name="fallback_for_prompts",
        blank=True,
        help_text="Tried in order when no key of the chosen model can answer.",
    )
    minutes_saved_estimate = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), help_text="Human minutes one run saves (ROI)."
    )
    version = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=False)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    created_by = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        db_table = "prompts_master"
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="prompts_slug_version_unique"),
            models.UniqueConstraint(fields=["slug"], condition=Q(is_active=True), name="prompts_one_active_version"),
            models.CheckConstraint(condition=Q(temperature__gte=0, temperature__lte=2), name="prompts_temperature_0_2"),
            models.CheckConstraint(condition=Q(version__gte=1), name="prompts_version_min_1"),
            models.CheckConstraint(condition=Q(minutes_saved_estimate__gte=0), name="prompts_minutes_non_negative"),
        ]

    def __str__(self):
        return f"{self.slug} v{self.version}"


class PromptFallbackModel(models.Model):
    """One fallback model of a prompt version, in the order they are tried."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="fallback_entries")
    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "prompt_fallback_models"
        ordering = ["prompt", "position"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "model"], name="prompt_fallback_once_per_model"),
        ]

    def __str__(self):
        return f"{self.prompt} -> {self.model} (#{self.position})"


class AIModelFallback(models.Model):
    """A model tried, in order, when no key of ``model`` can answer a gateway call (rate limits,
    outages), as prompts' fallbacks are for tasks."""

    model = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="fallback_entries")
    fallback = models.ForeignKey(AIModel, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    objects = ChangeAnnouncingManager()

    class Meta:
        db_table = "ai_model_fallbacks"
        ordering = ["model", "position"]
        verbose_name = "model fallback"
        constraints = [
            models.UniqueConstraint(fields=["model", "fallback"], name="ai_model_fallback_once"),
            models.CheckConstraint(condition=~Q(model=models.F("fallback")), name="ai_model_fallback_not_itself"),
        ]

    def __str__(self):
        return f"{self.model} -> {self.fallback} (#{self.position})"
