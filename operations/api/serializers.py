"""Serializers of the operations endpoints: processed tasks and batches (read-only here) and the
OpenAI-compatible gateway's chat completion request."""

import json
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from aimesh import translate
from aimesh.api.serializers import ProviderField
from aimesh.models import AIModel, Prompt
from celaest.errors import InvalidInput
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
#
# OpenAI's request, validated whole: every field OpenAI documents that CELAEST carries to the
# model (translated for Anthropic's, ``aimesh.translate``); any other field is refused by name
# (``unsupported_parameter``), never dropped silently. Messages are checked by hand: a nested
# serializer per message costs far more CPU on the gateway's hot path than these few tests.

ROLES = ("system", "developer", "user", "assistant", "tool")
#: OpenAI's limits: tool names, stop sequences, tools in one request
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STOP_SEQUENCES = 4
MAX_TOOLS = 128
IMAGE_DETAILS = ("auto", "low", "high")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
#: fields the OpenAI SDK may send that CELAEST does not carry (answers would silently differ)
UNSUPPORTED_FIELDS = (
    "audio",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "metadata",
    "modalities",
    "prediction",
    "service_tier",
    "top_logprobs",
    "web_search_options",
)


def field_error(path: str, message: str):
    """Raise the 400 of a request field (``path``: ``messages[2].content``), OpenAI's ``param``."""
    raise serializers.ValidationError({path: [message]})


def refuse_unknown(data: dict, known) -> None:
    """Refuse (400 ``unsupported_parameter``) the fields of ``data`` the gateway does not carry,
    naming the first (one OpenAI's SDK documents first): never dropped silently."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        refused = [name for name in unknown if name in UNSUPPORTED_FIELDS] or unknown
        raise InvalidInput(
            f"The parameter {refused[0]!r} is not supported by this gateway.",
            code="unsupported_parameter",
            details={"param": refused[0], "unsupported": unknown},
        )


def _text(value, path: str, *, allow_none: bool = False) -> str | None:
    """A string, or a list of text parts, as one string."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
        for part in value
    ):
        return "".join(part["text"] for part in value)
    field_error(path, "Expected a string or a list of text parts.")


def _user_content(value, path: str):
    """A string, or parts: text and images (an https URL or a base64 ``data:`` URL)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        field_error(path, "Expected a string or a non-empty list of content parts.")
    parts = []
    for n, part in enumerate(value):
        where = f"{path}[{n}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            image = part["image_url"]
            url = image.get("url")
            if not isinstance(url, str) or not (url.startswith("https://") or translate.DATA_URL.match(url)):
                field_error(
                    f"{where}.image_url.url", "Expected an https URL or a base64 data: URL of a png, jpeg, gif or webp."
                )
            if image.get("detail", "auto") not in IMAGE_DETAILS:
                field_error(f"{where}.image_url.detail", f"Expected one of {', '.join(IMAGE_DETAILS)}.")
            parts.append({"type": "image_url", "image_url": {"url": url, "detail": image.get("detail", "auto")}})
        else:
            field_error(where, "Expected a text part or an image_url part (other part types are not supported).")
    return parts


def _tool_calls(value, path: str) -> list[dict]:
    if not isinstance(value, list) or not value:
        field_error(path, "Expected a non-empty list of tool calls.")
    calls = []
    for n, call in enumerate(value):
        where = f"{path}[{n}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or call.get("type", "function") != "function" or not isinstance(function, dict):
            field_error(where, "Expected a function tool call.")
        if not isinstance(call.get("id"), str) or not call["id"]:
            field_error(f"{where}.id", "Expected the tool call's id.")
        if not isinstance(function.get("name"), str) or not TOOL_NAME.match(function["name"]):
            field_error(f"{where}.function.name", "Expected a tool name (letters, digits, _ and -, at most 64).")
        arguments = function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            field_error(f"{where}.function.arguments", "Expected a JSON object, as a string.")
        calls.append(translate.tool_call(call["id"], function["name"], arguments))
    return calls


def chat_messages(value) -> tuple[str, list[dict]]:
    """The system prompt (system and developer messages) and the conversation, validated."""
    if not isinstance(value, list) or not value:
        field_error("messages", "Expected a non-empty list of messages.")
    system, turns, called = [], [], set()
    for n, message in enumerate(value):
        where = f"messages[{n}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            field_error(f"{where}.role", f"Expected one of {', '.join(ROLES)}.")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text(content, f"{where}.content"))
        elif role == "user":
            turns.append({"role": "user", "content": _user_content(content, f"{where}.content")})
        elif role == "assistant":
            turn = {"role": "assistant", "content": _text(content, f"{where}.content", allow_none=True)}
            if message.get("tool_calls") is not None:
                turn["tool_calls"] = _tool_calls(message["tool_calls"], f"{where}.tool_calls")
                called.update(call["id"] for call in turn["tool_calls"])
            elif not turn["content"]:
                field_error(f"{where}.content", "An assistant message needs content or tool calls.")
            turns.append(turn)
        else:
            call_id = message.get("tool_call_id")
            if call_id not in called:
                field_error(f"{where}.tool_call_id", "Expected the id of a tool call of an earlier assistant message.")
            turns.append({"role": "tool", "tool_call_id": call_id, "content": _text(content, f"{where}.content")})
    if not any(turn["role"] == "user" for turn in turns):
        raise InvalidInput("At least one user message is needed.", code="no_user_message")
    return "\n\n".join(system), turns


def chat_tools(value) -> list[dict]:
    if not isinstance(value, list) or not value or len(value) > MAX_TOOLS:
        field_error("tools", f"Expected a list of 1 to {MAX_TOOLS} tools.")
    tools, names = [], set()
    for n, tool in enumerate(value):
        where = f"tools[{n}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            field_error(where, "Expected a function tool: {type: function, function: {name, description, parameters}}.")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name) or name in names:
            field_error(f"{where}.function.name", "Expected a unique tool name (letters, digits, _ and -, at most 64).")
        names.add(name)
        entry = {"name": name}
        if function.get("description") is not None:
            if not isinstance(function["description"], str):
                field_error(f"{where}.function.description", "Expected a string.")
            entry["description"] = function["description"]
        if function.get("parameters") is not None:
            if not isinstance(function["parameters"], dict):
                field_error(f"{where}.function.parameters", "Expected a JSON schema object.")
            entry["parameters"] = function["parameters"]
        if function.get("strict") is not None:
            if not isinstance(function["strict"], bool):
                field_error(f"{where}.function.strict", "Expected a boolean.")
            entry["strict"] = function["strict"]
        tools.append({"type": "function", "function": entry})
    return tools


def chat_tool_choice(value, tools: list[dict] | None):
    if not tools:
        field_error("tool_choice", "tool_choice needs tools.")
    if value in ("none", "auto", "required"):
        return value
    name = ((value.get("function") or {}) if isinstance(value, dict) else {}).get("name")
    if not isinstance(value, dict) or value.get("type") != "function" or not isinstance(name, str):
        field_error("tool_choice", 'Expected "none", "auto", "required" or {type: function, function: {name}}.')
    if name not in {tool["function"]["name"] for tool in tools}:
        field_error("tool_choice", f"No tool is named {name!r}.")
    return {"type": "function", "function": {"name": name}}


def chat_response_format(value) -> dict:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in RESPONSE_FORMATS:
        field_error("response_format.type", f"Expected one of {', '.join(RESPONSE_FORMATS)}.")
    if kind != "json_schema":
        return {"type": kind}
    spec = value.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), dict):
        field_error("response_format.json_schema", "Expected {name, schema} with a JSON schema object.")
    kept = {"name": spec["name"], "schema": spec["schema"]}
    for name, kind_of in (("strict", bool), ("description", str)):
        if spec.get(name) is not None:
            if not isinstance(spec[name], kind_of):
                field_error(f"response_format.json_schema.{name}", f"Expected a {kind_of.__name__}.")
            kept[name] = spec[name]
    return {"type": "json_schema", "json_schema": kept}


def chat_stop(value) -> list[str] | str:
    if isinstance(value, str) and value:
        return value
    if (
        isinstance(value, list)
        and 0 < len(value) <= MAX_STOP_SEQUENCES
        and all(isinstance(item, str) and item for item in value)
    ):
        return value
    field_error("stop", f"Expected a string or a list of 1 to {MAX_STOP_SEQUENCES} non-empty strings.")


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "role": {"type": "string", "enum": list(ROLES)},
                "content": {"description": "A string, or parts: text and image_url (https or base64 data: URL)."},
                "tool_calls": {"type": "array", "items": {"type": "object"}},
                "tool_call_id": {"type": "string"},
            },
            "required": ["role"],
        },
    }
)
class ChatMessagesField(serializers.JSONField):
    """OpenAI's messages; validated whole by the request (``chat_messages``)."""


class _RefusingUnknownFields:
    """A gateway request serializer: it refuses (400) any field it does not declare, naming it,
    and its fields are built once per class.

    DRF deep-copies a serializer's declared fields for each instance, which took 8% of the
    gateway's CPU at 50 concurrent calls (py-spy). These fields are flat validators that keep no
    state of a request (no nested serializer, no context, no ``source="*"``), so every instance
    shares one bound set; what a validation produces (``initial_data``, ``_errors``,
    ``_validated_data``) stays on the instance."""

    @property
    def fields(self):
        cls = type(self)
        fields = cls.__dict__.get("_shared_fields")
        if fields is None:
            fields = BindingDict(self)
            for name, field in self.get_fields().items():
                fields[name] = field
            cls._shared_fields = fields
        return fields

    def to_internal_value(self, data):
        if isinstance(data, dict):
            refuse_unknown(data, self.fields)
        return super().to_internal_value(data)


class ChatCompletionRequestSerializer(_RefusingUnknownFields, serializers.Serializer):
    model = serializers.CharField(max_length=200)
    messages = ChatMessagesField()
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = serializers.JSONField(required=False, help_text="{include_usage: bool}")
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    seed = serializers.IntegerField(required=False, allow_null=True)
    presence_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2, max_value=2)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True, min_value=-2, max_value=2)
    stop = serializers.JSONField(required=False, allow_null=True, help_text="A string or up to 4 strings.")
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)
    n = serializers.IntegerField(required=False, min_value=1, max_value=1, help_text="Only 1.")
    store = serializers.BooleanField(required=False, allow_null=True, help_text="Responses are not kept: false.")
    tools = serializers.JSONField(required=False, allow_null=True, help_text="Function tools, as OpenAI's.")
    tool_choice = serializers.JSONField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    response_format = serializers.JSONField(required=False, allow_null=True, help_text="text, json_object, json_schema")
    reasoning_effort = serializers.ChoiceField(
        choices=["minimal", "low", "medium", "high"], required=False, allow_null=True
    )

    #: validated fields carried to the model as OpenAI request options
    OPTIONS = (
        "top_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "stop",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
    )

    def validate(self, attrs):
        attrs["system"], attrs["turns"] = chat_messages(attrs["messages"])
        if attrs.get("store"):
            field_error("store", "Responses are not stored: store must be false.")
        options = attrs.get("stream_options")
        if options is not None and (
            not isinstance(options, dict)
            or set(options) - {"include_usage"}
            or not isinstance(options.get("include_usage", False), bool)
        ):
            field_error("stream_options", "Expected {include_usage: bool}.")
        if attrs.get("tools") is not None:
            attrs["tools"] = chat_tools(attrs["tools"])
        if attrs.get("tool_choice") is not None:
            attrs["tool_choice"] = chat_tool_choice(attrs["tool_choice"], attrs.get("tools"))
        if attrs.get("parallel_tool_calls") is not None and not attrs.get("tools"):
            field_error("parallel_tool_calls", "parallel_tool_calls needs tools.")
        if attrs.get("response_format") is not None:
            attrs["response_format"] = chat_response_format(attrs["response_format"])
        if attrs.get("stop") is not None:
            attrs["stop"] = chat_stop(attrs["stop"])
        attrs["options"] = {name: attrs[name] for name in self.OPTIONS if attrs.get(name) not in (None, "")}
        return attrs


MAX_EMBEDDING_INPUTS = 2048


def embedding_inputs(value) -> list:
    """A string, a list of strings, a list of token ids or a list of such lists, as a list."""

    def is_tokens(item):
        return isinstance(item, list) and item and all(type(t) is int and t >= 0 for t in item)

    if (isinstance(value, str) and value) or is_tokens(value):
        return [value]
    if (
        isinstance(value, list)
        and 0 < len(value) <= MAX_EMBEDDING_INPUTS
        and (all(isinstance(item, str) and item for item in value) or all(is_tokens(item) for item in value))
    ):
        return value
    field_error("input", f"Expected a non-empty string, up to {MAX_EMBEDDING_INPUTS} of them, or token id arrays.")


class EmbeddingsRequestSerializer(_RefusingUnknownFields, serializers.Serializer):
    model = serializers.CharField(max_length=200)
    input = serializers.JSONField(help_text="A string, a list of strings, or arrays of token ids.")
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], required=False)
    dimensions = serializers.IntegerField(required=False, min_value=1, max_value=65536)
    user = serializers.CharField(required=False, allow_blank=True, max_length=256)

    def validate(self, attrs):
        attrs["inputs"] = embedding_inputs(attrs["input"])
        return attrs
