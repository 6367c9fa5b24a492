"""Filtersets for AI mesh endpoints."""

import django_filters

from celaest.api.filters import ApiFilterSet

from .models import AIApiKey, AIModel, Prompt


class AIModelFilterSet(ApiFilterSet):
    class Meta:
        model = AIModel
        fields = {"provider": ["exact"], "model_id": ["exact"], "is_active": ["exact"], "is_default": ["exact"]}


class PromptFilterSet(ApiFilterSet):
    preferred_model = django_filters.UUIDFilter(field_name="preferred_model_id")

    class Meta:
        model = Prompt
        fields = {"slug": ["exact"], "category": ["exact"], "version": ["exact"], "is_active": ["exact"]}


class AIApiKeyFilterSet(ApiFilterSet):
    class Meta:
        model = AIApiKey
        fields = {"provider": ["exact"], "is_active": ["exact"], "is_healthy": ["exact"]}
