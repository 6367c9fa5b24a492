"""Serializers of the operations endpoints: processed tasks and batches, read-only here."""

from rest_framework import serializers

from aimesh.api.serializers import ProviderField
from aimesh.models import AIModel, Prompt
from operations.models import ProcessedTask, TaskBatch


class ModelSummarySerializer(serializers.ModelSerializer):
    provider = ProviderField(read_only=True)

    class Meta:
        model = AIModel
        fields = ["id", "provider", "model_id", "display_name"]
        read_only_fields = fields


class PromptSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "slug", "version", "name"]
        read_only_fields = fields


class ProcessedTaskSerializer(serializers.ModelSerializer):
    """A task as it ran. Which pooled provider key served it is a platform internal, so absent."""

    model = ModelSummarySerializer(read_only=True, allow_null=True)
    prompt = PromptSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = ProcessedTask
        fields = [
            "id", "user", "license", "batch", "batch_index", "model", "prompt", "status",
            "input_text", "input_variables", "output_text", "output_json", "error_code", "error_message",
            "tokens_input", "tokens_output", "tokens_cached", "tokens_total", "cost_usd",
            "execution_time_ms", "attempts", "created_at", "completed_at",
        ]  # fmt: skip
        read_only_fields = fields


class TaskBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskBatch
        fields = [
            "id", "name", "user", "license", "prompt", "model", "status", "total_tasks", "completed_tasks",
            "failed_tasks", "started_at", "finished_at", "cancelled_at", "error_message", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
