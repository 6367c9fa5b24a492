"""OpenAI's Responses API at ``POST /v1/responses`` (with ``stream``), stateless: CELAEST keeps no
responses, so ``previous_response_id`` and ``store: true`` are refused clearly and every call
carries its whole conversation (input items: messages with text and images, function calls and
their outputs). The request is carried into the gateway's own chat request, so every model of
the mesh answers it (translated for Anthropic's), and the call takes the gateway's path: the
license counted, the task recorded, the key pool. Output items, usage and stream events are the
Responses API's, as the OpenAI SDK reads them (``responses.create``, ``responses.stream``).
"""

import json
import time

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from aimesh import providers
from celaest.errors import DomainError, InvalidInput

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

#: the request fields CELAEST carries (others are refused by name)
FIELDS = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "store",
    "text",
    "user",
)
ROLES = ("user", "system", "developer", "assistant")


def _content(value, path: str, role: str):
    """A message item's content as chat content (a string, or text and image parts)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        field_error(path, "Expected a string or a list of content parts.")
    parts = []
    for n, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and role == "user" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}
            parts.append({"type": "image_url", "image_url": image})
        else:
            field_error(f"{path}[{n}]", "Expected an input_text, output_text or (from the user) input_image part.")
    if role != "user":  # only users' messages carry images: the others are their text
        return "".join(part["text"] for part in parts)
    return parts


def chat_messages(items) -> list[dict]:
    """Input items as chat messages: consecutive function calls join the assistant message
    before them, their outputs become tool messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        field_error("input", "Expected a string or a non-empty list of input items.")
    messages: list[dict] = []
    for n, item in enumerate(items):
        where = f"input[{n}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                field_error(f"{where}.role", f"Expected one of {', '.join(ROLES)}.")
            messages.append({"role": role, "content": _content(item.get("content"), f"{where}.content", role)})
        elif kind == "function_call":
            if not all(isinstance(item.get(name), str) for name in ("call_id", "name", "arguments")):
                field_error(where, "Expected a function_call with call_id, name and arguments.")
            function = {"name": item["name"], "arguments": item["arguments"]}
            call = {"id": item["call_id"], "type": "function", "function": function}
            if messages and messages[-1]["role"] == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
                messages[-1]["content"] = messages[-1]["content"] or None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                field_error(where, "Expected a function_call_output with call_id and output (a string).")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        else:
            field_error(
                f"{where}.type", f"The input item type {kind!r} is not supported (this gateway keeps no state)."
            )
    return messages


def _tools(value) -> list[dict]:
    if not isinstance(value, list):
        field_error("tools", "Expected a list of tools.")
    tools = []
    for n, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            field_error(f"tools[{n}]", "Only function tools are supported.")
        keys = ("name", "description", "parameters", "strict")
        function = {key: tool[key] for key in keys if tool.get(key) is not None}
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value):
    if value in ("auto", "none", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return {"type": "function", "function": {"name": value["name"]}}
    field_error("tool_choice", 'Expected "auto", "none", "required" or {type: function, name}.')


def _response_format(text) -> dict | None:
    form = text.get("format") if isinstance(text, dict) else None
    if not isinstance(text, dict) or set(text) - {"format"} or (form is not None and not isinstance(form, dict)):
        field_error("text", "Expected {format: {type: text | json_object | json_schema}}.")
    if form is None or form.get("type") == "text":
        return None
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    if form.get("type") == "json_schema":
        spec = {key: form[key] for key in ("name", "schema", "strict", "description") if form.get(key) is not None}
        return {"type": "json_schema", "json_schema": spec}
    field_error("text.format.type", "Expected text, json_object or json_schema.")


def chat_body(data: dict) -> dict:
    """A Responses API request as the gateway's chat completion request."""
    if data.get("previous_response_id") is not None:
        raise InvalidInput(
            "Responses are not kept: send the whole conversation as input items, not previous_response_id.",
            code="unsupported_parameter",
            details={"param": "previous_response_id"},
        )
    refuse_unknown(data, FIELDS)
    if data.get("store") is True:
        field_error("store", "Responses are not stored: store must be false or absent.")
    messages = chat_messages(data.get("input"))
    if data.get("instructions") is not None:
        if not isinstance(data["instructions"], str):
            field_error("instructions", "Expected a string.")
        messages.insert(0, {"role": "system", "content": data["instructions"]})
    body = {"model": data.get("model"), "messages": messages}
    for name in ("stream", "temperature", "top_p", "parallel_tool_calls", "user"):
        if data.get(name) is not None:
            body[name] = data[name]
    if data.get("max_output_tokens") is not None:
        body["max_tokens"] = data["max_output_tokens"]
    if data.get("tools"):
        body["tools"] = _tools(data["tools"])
    if data.get("tool_choice") is not None:
        body["tool_choice"] = _tool_choice(data["tool_choice"])
    if data.get("text") is not None:
        response_format = _response_format(data["text"])
        if response_format is not None:
            body["response_format"] = response_format
    return body


def _usage(usage) -> dict:
    return {
        "input_tokens": usage.tokens_input,
        "input_tokens_details": {"cached_tokens": usage.tokens_cached},
        "output_tokens": usage.tokens_output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.tokens_input + usage.tokens_output,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _call_item(item_id: str, call: dict, status: str = "completed") -> dict:
    function = call["function"]
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call["id"],
        "name": function["name"],
        "arguments": function["arguments"] if status == "completed" else "",
        "status": status,
    }


class _Rendering:
    """One response's object, its output items and the stream events that build it."""

    def __init__(self, call: GatewayCall, model_id: str):
        self.hex = call.task.pk.hex
        self.model_id = model_id
        self.request = call.request
        self.sequence = 0
        self.items: list[dict] = []
        self.open: dict | None = None  # the item being streamed
        self.text: list[str] = []
        self.calls: dict[int, int] = {}  # chat tool call index -> output index

    def response(self, status: str, *, usage=None, finish: str = "") -> dict:
        body = {
            "id": f"resp_{self.hex}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model_id,
            "output": self.items,
            "error": None,
            "incomplete_details": None,
            "instructions": self.request.system or None,
            "max_output_tokens": self.request.max_tokens,
            "parallel_tool_calls": self.request.options.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "store": False,
            "temperature": self.request.temperature,
            "tool_choice": self.request.options.get("tool_choice", "auto"),
            "tools": [{"type": "function", **tool["function"]} for tool in self.request.options.get("tools") or ()],
            "top_p": self.request.options.get("top_p"),
            "metadata": {},
            "usage": _usage(usage) if usage is not None else None,
        }
        if finish == "length":
            body["status"], body["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
        return body

    def answered(self, text: str, tool_calls: list[dict]) -> None:
        if text or not tool_calls:
            self.items.append(_message_item(f"msg_{self.hex}", text))
        for n, call in enumerate(tool_calls):
            self.items.append(_call_item(f"fc_{self.hex}_{n}", call))

    # -- streaming --

    def event(self, kind: str, **data) -> bytes:
        self.sequence += 1
        payload = {"type": kind, "sequence_number": self.sequence, **data}
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    def feed(self, delta: dict) -> list[bytes]:
        events = []
        if delta.get("content"):
            if self.open is None or self.open["type"] != "message":
                events += self._close()
                events += self._add(_message_item(f"msg_{self.hex}", "", "in_progress"))
                part = {"type": "output_text", "text": "", "annotations": []}
                events.append(self._item_event("response.content_part.added", content_index=0, part=part))
            self.text.append(delta["content"])
            events.append(self._item_event("response.output_text.delta", content_index=0, delta=delta["content"]))
        for piece in delta.get("tool_calls") or ():
            number, function = piece.get("index", 0), piece.get("function") or {}
            if number not in self.calls:
                events += self._close()
                named = {"name": function.get("name") or "", "arguments": ""}
                call = {"id": piece.get("id") or "", "function": named}
                events += self._add(_call_item(f"fc_{self.hex}_{number}", call, "in_progress"))
                self.calls[number] = len(self.items) - 1
            if function.get("arguments") and self.open is self.items[self.calls[number]]:
                self.open["arguments"] += function["arguments"]
                delta_event = self._item_event("response.function_call_arguments.delta", delta=function["arguments"])
                events.append(delta_event)
        return events

    def close(self) -> list[bytes]:
        return self._close()

    def _add(self, item: dict) -> list[bytes]:
        self.items.append(item)
        self.open = item
        return [self.event("response.output_item.added", output_index=len(self.items) - 1, item=item)]

    def _item_event(self, kind: str, **data) -> bytes:
        return self.event(kind, item_id=self.open["id"], output_index=self.items.index(self.open), **data)

    def _close(self) -> list[bytes]:
        item = self.open
        if item is None:
            return []
        events = []
        if item["type"] == "message":
            text = "".join(self.text)
            part = {"type": "output_text", "text": text, "annotations": []}
            events.append(self._item_event("response.output_text.done", content_index=0, text=text))
            events.append(self._item_event("response.content_part.done", content_index=0, part=part))
            item["content"] = [part]
        else:
            events.append(self._item_event("response.function_call_arguments.done", arguments=item["arguments"]))
        item["status"] = "completed"
        events.append(self.event("response.output_item.done", output_index=self.items.index(item), item=item))
        self.open = None
        return events


class ResponsesRequestSerializer(serializers.Serializer):
    """The Responses API's request (documentation; validated in ``chat_body``)."""

    model = serializers.CharField()
    input = serializers.JSONField(help_text="A string, or items: messages, function_call, function_call_output")
    instructions = serializers.CharField(required=False)
    tools = serializers.JSONField(required=False, help_text="Function tools")
    tool_choice = serializers.JSONField(required=False)
    parallel_tool_calls = serializers.BooleanField(required=False)
    max_output_tokens = serializers.IntegerField(required=False, min_value=1)
    temperature = serializers.FloatField(required=False)
    top_p = serializers.FloatField(required=False)
    stream = serializers.BooleanField(required=False)
    store = serializers.BooleanField(required=False, help_text="Responses are not kept: false or absent.")
    text = serializers.JSONField(required=False, help_text="{format: {type: text | json_object | json_schema}}")
    user = serializers.CharField(required=False)


class ResponsesView(TranslatedCallView):
    gateway = "responses"
    chat_body = staticmethod(chat_body)

    @extend_schema(
        summary="Create a model response (OpenAI's Responses API, stateless; stream: true answers events)",
        request=ResponsesRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **GATEWAY_ERRORS},
        tags=["gateway"],
    )
    async def post(self, request, prepared: GatewayCall):
        call = prepared
        answer = await call_route(call)
        rendering = _Rendering(call, answer.model.model_id)
        if call.stream:
            self.streaming = True
            return event_stream(call, self._events(call, answer, rendering))
        result = answer.result
        rendering.answered(result.text, result.tool_calls)
        finish = providers.finish_reason(result.finish_reason, result.tool_calls)
        return answered(call, Response(rendering.response("completed", usage=result.usage, finish=finish)))

    async def _events(self, call: GatewayCall, answer, rendering: _Rendering):
        yield rendering.event("response.created", response=rendering.response("in_progress"))
        yield rendering.event("response.in_progress", response=rendering.response("in_progress"))
        deltas = call_deltas(call, answer)
        try:
            async for delta in deltas:
                for event in rendering.feed(delta):
                    yield event
        except DomainError as failure:
            failed = rendering.response("failed")
            failed["error"] = {"code": failure.code, "message": failure.message}
            yield rendering.event("response.failed", response=failed)
            return
        finally:
            await deltas.aclose()
        for event in rendering.close():
            yield event
        state = answer.stream_state
        finish = providers.finish_reason(state.finish_reason, state.calls)
        completed = rendering.response("completed", usage=state.usage, finish=finish)
        yield rendering.event("response.completed", response=completed)
