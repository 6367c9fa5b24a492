"""Serializers of the operations endpoints: processed tasks and batches (read-only here) and the
OpenAI-compatible gateway's chat completion request."""

from drf_spectacular.utils import extend_schema_field
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


class TaskRunSerializer(serializers.Serializer):
    """A task to run: a prompt (its active version unless ``prompt_version``) with its variables or
    a plain input text."""

    prompt = serializers.SlugField(max_length=120)
    prompt_version = serializers.IntegerField(min_value=1, required=False)
    variables = serializers.DictField(required=False, default=dict)
    input_text = serializers.CharField(required=False, allow_blank=True, default="", max_length=500_000)
    model = serializers.CharField(required=False, max_length=200, help_text="An AI model id, e.g. gpt-4o-mini.")
    run_async = serializers.BooleanField(
        required=False, default=False, help_text='Queue the task and answer 202 (JSON key "async").'
    )

    def to_internal_value(self, data):
        if isinstance(data, dict) and "async" in data and "run_async" not in data:
            data = {**data, "run_async": data["async"]}
        return super().to_internal_value(data)

    def validate(self, attrs):
        if not attrs.get("variables") and not attrs.get("input_text"):
            raise serializers.ValidationError("Give either variables or input_text.")
        return attrs


class BatchCreateSerializer(serializers.Serializer):
    """A batch: a prompt and its inputs, as a JSON list (texts or variable objects) or an uploaded
    CSV (a header row names the variables) or JSONL file."""

    prompt = serializers.SlugField(max_length=120)
    prompt_version = serializers.IntegerField(min_value=1, required=False)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    inputs = serializers.ListField(child=serializers.JSONField(), required=False)
    file = serializers.FileField(required=False, help_text="A .csv or .jsonl file of inputs.")

    def validate(self, attrs):
        if bool(attrs.get("inputs")) == bool(attrs.get("file")):
            raise serializers.ValidationError("Give either inputs or a file.")
        return attrs


# --- The gateway (/v1/chat/completions) ------------------------------------------------------

ROLES = {"system", "developer", "user", "assistant"}


@extend_schema_field({"type": "string", "enum": sorted(ROLES)}, component_name="ChatRoleEnum")
class ChatRoleField(serializers.ChoiceField):
    """A chat message's role, named once in the schema (users have a ``role`` of their own)."""

    def __init__(self, **kwargs):
        super().__init__(choices=sorted(ROLES), **kwargs)


class ChatMessageSerializer(serializers.Serializer):
    role = ChatRoleField()
    content = serializers.JSONField(help_text="A string, or a list of text parts.")

    def validate_content(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
            return "".join(part["text"] for part in value)
        raise serializers.ValidationError("Expected a string or a list of text parts.")


class ChatCompletionRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200)
    messages = ChatMessageSerializer(many=True, allow_empty=False)
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = serializers.DictField(required=False)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    response_format = serializers.DictField(required=False)
