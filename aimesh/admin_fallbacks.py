"""The admin of models' gateway fallbacks (``ai_model_fallbacks``)."""

from django.contrib import admin

from celaest.admin import CelaestModelAdmin

from .models import AIModelFallback


@admin.register(AIModelFallback)
class AIModelFallbackAdmin(CelaestModelAdmin):
    list_display = ["model", "position", "fallback"]
    list_select_related = ["model", "fallback"]
    search_fields = ["model__model_id", "fallback__model_id"]
    autocomplete_fields = ["model", "fallback"]
