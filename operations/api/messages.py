"""The Anthropic-compatible gateway: ``POST /v1/messages`` (with ``stream``), so the official
``anthropic`` SDK (and anything built on the Messages API) uses CELAEST as its base URL.

The request is validated in Anthropic's terms and carried into the gateway's own (OpenAI's chat
completion: ``aimesh.translate`` turns it back into Anthropic's for Anthropic models), so every
model of the mesh answers, and the call takes the same path as a chat completion: the license
counted, the task recorded, the key pool. Answers and stream events are Anthropic's, and so are
errors (``{"type": "error", "error": {"type", "message"}}``, the project's ``code`` and
``details`` kept beside them). Callers authenticate with a CELAEST user API key in ``x-api-key``
(as the SDK sends it) or as a bearer token.

Prompt-caching hints (``cache_control``) are accepted and not carried: CELAEST's translation
has no place for them. What the gateway cannot carry otherwise (extended thinking, documents,
server tools, ``top_k``) is refused by name.
"""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from aimesh import providers, translate
from celaest.errors import DomainError
from settings_app.authentication import ApiKeyHeaderAuthentication

from .gateway import (
    GATEWAY_ERRORS,
    GatewayCall,
    TranslatedCallView,
    answered,
    call_deltas,
    call_route,
    event_stream,
)
from .serializers import field_error, refuse_unknown

#: the Messages API's request fields CELAEST carries
FIELDS = (
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "metadata",
    "output_config",
)
MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _system(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in value):
        if all(isinstance(b.get("text"), str) for b in value):
            return "\n\n".join(block["text"] for block in value)
    field_error("system", "Expected a string or a list of text blocks.")


def _image_part(block: dict, path: str) -> dict:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64":
        if source.get("media_type") not in MEDIA_TYPES or not isinstance(source.get("data"), str):
            field_error(f"{path}.source", f"Expected a media_type among {', '.join(MEDIA_TYPES)} and base64 data.")
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        field_error(f"{path}.source", "Expected a base64 or url image source.")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_text(block: dict, path: str) -> str:
    content = block.get("content", "")
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str) for b in content
    ):
        content = "".join(b["text"] for b in content)
    if not isinstance(content, str):
        field_error(f"{path}.content", "Expected a string or text blocks (images in tool results are not supported).")
    if block.get("is_error") is True:
        content = f"Error: {content}"
    return content


def _message(message, path: str) -> list[dict]:
    """One Anthropic message as OpenAI messages (a user message's tool results first, each its
    own ``tool`` message, as OpenAI wants them right after the assistant's calls)."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant"):
        field_error(f"{path}.role", "Expected user or assistant.")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        field_error(f"{path}.content", "Expected a string or a list of content blocks.")
    parts, calls, results = [], [], []
    for n, block in enumerate(content):
        where = f"{path}.content[{n}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and role == "user":
            parts.append(_image_part(block, where))
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("input"), dict):
                field_error(where, "Expected a tool_use block with an id, a name and an input object.")
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": json.dumps(block["input"])},
                }
            )
        elif kind == "tool_result" and role == "user":
            if not isinstance(block.get("tool_use_id"), str):
                field_error(f"{where}.tool_use_id", "Expected the id of a tool_use block.")
            results.append(
                {"role": "tool", "tool_call_id": block["tool_use_id"], "content": _tool_result_text(block, where)}
            )
        else:
            field_error(where, f"The content block type {kind!r} is not supported here.")
    if role == "assistant":
        text = "".join(part["text"] for part in parts)
        return [{"role": "assistant", "content": text or None, **({"tool_calls": calls} if calls else {})}]
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _tool_choice(value) -> tuple[object, bool | None]:
    """Anthropic's tool choice as OpenAI's, and ``parallel_tool_calls``."""
    if not isinstance(value, dict) or value.get("type") not in ("auto", "any", "tool", "none"):
        field_error("tool_choice", "Expected {type: auto | any | tool | none}.")
    if value["type"] == "tool":
        choice = {"type": "function", "function": {"name": value.get("name")}}
    else:
        choice = {"auto": "auto", "any": "required", "none": "none"}[value["type"]]
    parallel = False if value.get("disable_parallel_tool_use") is True else None
    return choice, parallel


def _tools(value) -> list[dict]:
    if not isinstance(value, list):
        field_error("tools", "Expected a list of tools.")
    tools = []
    for n, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            field_error(
                f"tools[{n}]",
                "Expected a client tool {name, description, input_schema} (server tools are not supported).",
            )
        function = {"name": tool.get("name"), "parameters": tool.get("input_schema")}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools


def chat_body(data: dict) -> dict:
    """A Messages API request as the gateway's chat completion request (validated after by
    ``ChatCompletionRequestSerializer``)."""
    refuse_unknown(data, FIELDS)
    if not isinstance(data.get("max_tokens"), int) or isinstance(data.get("max_tokens"), bool):
        field_error("max_tokens", "A positive integer is required.")
    if not isinstance(data.get("messages"), list) or not data["messages"]:
        field_error("messages", "Expected a non-empty list of messages.")
    messages = [{"role": "system", "content": _system(data["system"])}] if data.get("system") else []
    for n, message in enumerate(data["messages"]):
        messages += _message(message, f"messages[{n}]")
    body = {"model": data.get("model"), "messages": messages, "max_tokens": data["max_tokens"]}
    for name in ("stream", "temperature", "top_p"):
        if name in data:
            body[name] = data[name]
    if data.get("stop_sequences") is not None:
        body["stop"] = data["stop_sequences"]
    if data.get("tools"):
        body["tools"] = _tools(data["tools"])
    if data.get("tool_choice") is not None:
        body["tool_choice"], parallel = _tool_choice(data["tool_choice"])
        if parallel is not None:
            body["parallel_tool_calls"] = parallel
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
            field_error("metadata", "Expected {user_id}.")
        if metadata.get("user_id") is not None:
            body["user"] = metadata["user_id"]
    output = data.get("output_config")
    if output is not None:
        output_format = output.get("format") if isinstance(output, dict) else None
        if (
            not isinstance(output_format, dict)
            or set(output) - {"format"}
            or output_format.get("type") != "json_schema"
        ):
            field_error("output_config", "Only {format: {type: json_schema, schema}} is supported.")
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output_format.get("schema")},
        }
    return body


def _usage(usage) -> dict:
    return {
        "input_tokens": usage.tokens_input - usage.tokens_cached,
        "output_tokens": usage.tokens_output,
        "cache_read_input_tokens": usage.tokens_cached,
        "cache_creation_input_tokens": 0,
    }


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class MessagesRequestSerializer(serializers.Serializer):
    """The Messages API's request (documentation; validated in ``chat_body``)."""

    model = serializers.CharField()
    max_tokens = serializers.IntegerField(min_value=1)
    messages = serializers.JSONField(help_text="user and assistant messages: text, image, tool_use, tool_result")
    system = serializers.JSONField(required=False)
    stop_sequences = serializers.ListField(child=serializers.CharField(), required=False)
    stream = serializers.BooleanField(required=False)
    temperature = serializers.FloatField(required=False)
    top_p = serializers.FloatField(required=False)
    tools = serializers.JSONField(required=False)
    tool_choice = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False)
    output_config = serializers.JSONField(required=False, help_text="{format: {type: json_schema, schema}}")


class MessagesView(TranslatedCallView):
    authentication_classes = [ApiKeyHeaderAuthentication]

    gateway = "messages"
    chat_body = staticmethod(chat_body)

    @extend_schema(
        summary="Create a message (Anthropic-compatible; stream: true answers server-sent events)",
        request=MessagesRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **GATEWAY_ERRORS},
        tags=["gateway"],
    )
    async def post(self, request, prepared: GatewayCall):
        call = prepared
        answer = await call_route(call)
        if call.stream:
            self.streaming = True
            return event_stream(call, self._events(call, answer))
        result = answer.result
        return answered(
            call,
            Response(
                {
                    "id": f"msg_{call.task.pk.hex}",
                    "type": "message",
                    "role": "assistant",
                    "model": answer.model.model_id,
                    "content": translate.anthropic_content(result.text, result.tool_calls),
                    "stop_reason": translate.stop_reason(
                        providers.finish_reason(result.finish_reason, result.tool_calls)
                    ),
                    "stop_sequence": None,
                    "usage": _usage(result.usage),
                }
            ),
        )

    async def _events(self, call: GatewayCall, answer):
        message = {
            "id": f"msg_{call.task.pk.hex}",
            "type": "message",
            "role": "assistant",
            "model": answer.model.model_id,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        yield _sse("message_start", {"type": "message_start", "message": message})
        blocks = translate.AnthropicEvents()
        deltas = call_deltas(call, answer)
        try:
            async for delta in deltas:
                for event, data in blocks.feed(delta):
                    yield _sse(event, data)
        except DomainError as failure:
            error = {"type": "api_error", "message": failure.message, "code": failure.code}
            yield _sse("error", {"type": "error", "error": error})
            return
        finally:
            await deltas.aclose()
        for event, data in blocks.close():
            yield _sse(event, data)
        state = answer.stream_state
        finish = providers.finish_reason(state.finish_reason, state.calls)
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": translate.stop_reason(finish), "stop_sequence": None},
                "usage": _usage(state.usage),
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})
