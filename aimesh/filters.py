"""Filtersets for AI mesh endpoints."""

import django_filters

from .models import AIApiKey, AIModel, Prompt


class AIModelFilterSet(django_filters.FilterSet):
    class Meta:
        model = AIModel
        fields = {"provider": ["exact"], "model_id": ["exact"], "is_active": ["exact"], "is_default": ["exact"]}


class PromptFilterSet(django_filters.FilterSet):
    preferred_model = django_filters.UUIDFilter(field_name="preferred_model_id")

    class Meta:
        model = Prompt
        fields = {"slug": ["exact"], "category": ["exact"], "version": ["exact"], "is_active": ["exact"]}


class AIApiKeyFilterSet(django_filters.FilterSet):
    class Meta:
        model = AIApiKey
        fields = {"provider": ["exact"], "is_active": ["exact"], "is_healthy": ["exact"]}
