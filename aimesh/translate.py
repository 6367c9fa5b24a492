"""Between the two protocol families: OpenAI chat completions and Anthropic's Messages API.

A chat request inside CELAEST is in OpenAI's shape (the gateway's own protocol, and what prompt
tasks build): messages whose content is text or parts (text, images), assistant tool calls and
``tool`` results, and OpenAI's request options. OpenAI-compatible providers get it as it is;
``anthropic_arguments`` turns it into the Messages API's, and ``openai_answer`` and
``AnthropicDeltas`` turn Anthropic's answers and stream events back into OpenAI's message and
deltas. What one family cannot honour is named by ``unsupported_options`` so that the gateway
refuses it (400) before any call, never dropping it silently.
"""

import json
import re

#: Anthropic's stop reasons as OpenAI's finish reasons
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: OpenAI request options the Messages API has no equivalent for
ANTHROPIC_UNSUPPORTED = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")

#: images given inline: ``data:<media type>;base64,<data>``
DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]+)$")


def unsupported_options(*, anthropic: bool, options: dict) -> list[str]:
    """The options (set, not null) a model of this family cannot honour."""
    if not anthropic:
        return []
    return [name for name in ANTHROPIC_UNSUPPORTED if options.get(name) is not None]


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", stop_reason or "")


def content_text(content) -> str:
    """The text of a message's content (a string, or parts of which the text ones count)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
        return "".join(texts)
    return ""


# -- OpenAI request -> Anthropic arguments -------------------------------------------------------


def _image_block(url: str) -> dict:
    inline = DATA_URL.match(url)
    if inline:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[1], "data": inline[2]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        if part["type"] == "text" and part["text"]:
            blocks.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image_url":
            blocks.append(_image_block(part["image_url"]["url"]))
    return blocks


def _add(messages: list[dict], role: str, blocks: list[dict]) -> None:
    """Consecutive messages of one role become one: every result of the assistant's tool calls
    must come in the one user message that follows them."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def anthropic_messages(messages: list[dict]) -> list[dict]:
    """OpenAI messages (no system ones: those are the system prompt) as Anthropic's."""
    translated: list[dict] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            result = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
            result["content"] = content_text(message.get("content"))
            _add(translated, "user", [result])
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call["function"]
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": function["name"],
                        "input": json.loads(function.get("arguments") or "{}"),
                    }
                )
            _add(translated, "assistant", blocks)
        else:
            _add(translated, "user", _blocks(message.get("content")))
    return translated


def anthropic_tools(tools: list[dict]) -> list[dict]:
    translated = []
    for tool in tools:
        function = tool["function"]
        entry = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object"}}
        if function.get("description"):
            entry["description"] = function["description"]
        translated.append(entry)
    return translated


def anthropic_tool_choice(choice, parallel: bool | None) -> dict | None:
    if choice is None and parallel is not False:
        return None
    if isinstance(choice, dict):
        translated = {"type": "tool", "name": choice["function"]["name"]}
    else:
        translated = {"type": {"none": "none", "required": "any"}.get(choice, "auto")}
    if parallel is False and translated["type"] != "none":
        translated["disable_parallel_tool_use"] = True
    return translated


def anthropic_arguments(*, messages: list[dict], system: str, options: dict, json_mode: bool) -> dict:
    """The Messages API's arguments (beside model, max_tokens and timeout) for an OpenAI request."""
    arguments: dict = {"messages": anthropic_messages(messages)}
    response_format = options.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        arguments["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif json_mode or response_format.get("type") == "json_object":
        # JSON without a schema has no switch: the instruction is part of the system prompt.
        system = (system + "\n\n" if system else "") + "Answer with a single JSON object and nothing else."
    if system:
        arguments["system"] = system
    if options.get("tools"):
        arguments["tools"] = anthropic_tools(options["tools"])
    choice = anthropic_tool_choice(options.get("tool_choice"), options.get("parallel_tool_calls"))
    if choice is not None and options.get("tools"):
        arguments["tool_choice"] = choice
    stop = options.get("stop")
    if stop:
        arguments["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if options.get("user"):
        arguments["metadata"] = {"user_id": options["user"]}
    return arguments


# -- Anthropic answers -> OpenAI -----------------------------------------------------------------


def tool_call(identifier: str, name: str, arguments: str) -> dict:
    return {"id": identifier, "type": "function", "function": {"name": name, "arguments": arguments}}


def openai_answer(content_blocks) -> tuple[str, list[dict]]:
    """The text and the tool calls (OpenAI's shape) of an Anthropic message's content."""
    texts, calls = [], []
    for block in content_blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            calls.append(tool_call(block.id, block.name, json.dumps(block.input)))
    return "".join(texts), calls


class AnthropicDeltas:
    """Turns the content events of one Anthropic stream into OpenAI deltas (``{"content": ...}``
    or ``{"tool_calls": [...]}``), numbering tool calls as OpenAI does (0, 1, ... among calls)."""

    def __init__(self):
        self.calls: dict[int, int] = {}  # content block index -> tool call index

    def start(self, index: int, block) -> dict | None:
        if getattr(block, "type", "") != "tool_use":
            return None
        self.calls[index] = len(self.calls)
        return {"tool_calls": [{"index": self.calls[index], **tool_call(block.id, block.name, "")}]}

    def delta(self, index: int, delta) -> dict | None:
        kind = getattr(delta, "type", "")
        if kind == "text_delta":
            return {"content": delta.text}
        if kind == "input_json_delta" and index in self.calls:
            return {"tool_calls": [{"index": self.calls[index], "function": {"arguments": delta.partial_json}}]}
        return None


# -- OpenAI answers -> Anthropic (the Messages API served to Anthropic clients) -----------------

#: OpenAI's finish reasons as Anthropic's stop reasons
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def stop_reason(finish_reason: str | None) -> str:
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def tool_input(arguments: str) -> dict:
    """A tool call's arguments as Anthropic's ``input`` object (a model's malformed JSON kept
    whole under ``arguments`` rather than lost)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"arguments": arguments}


def anthropic_content(text: str, tool_calls: list[dict]) -> list[dict]:
    """An answer's text and OpenAI tool calls as Anthropic content blocks."""
    blocks = [{"type": "text", "text": text}] if text else []
    for call in tool_calls:
        function = call["function"]
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": tool_input(function["arguments"])}
        )
    return blocks


class AnthropicEvents:
    """OpenAI deltas as Anthropic's content-block stream events (``(event name, data)``): a text
    block while text comes, a ``tool_use`` block per tool call with its input as JSON pieces."""

    def __init__(self):
        self.index = -1
        self.open_kind: str | None = None
        self.calls: dict[int, int] = {}  # OpenAI tool call index -> content block index

    def feed(self, delta: dict) -> list[tuple[str, dict]]:
        events = []
        if delta.get("content"):
            if self.open_kind != "text":
                events += self._open({"type": "text", "text": ""}, "text")
            events.append(self._delta(self.index, {"type": "text_delta", "text": delta["content"]}))
        for piece in delta.get("tool_calls") or ():
            number, function = piece.get("index", 0), piece.get("function") or {}
            if number not in self.calls:
                block = {
                    "type": "tool_use",
                    "id": piece.get("id") or "",
                    "name": function.get("name") or "",
                    "input": {},
                }
                events += self._open(block, "tool_use")
                self.calls[number] = self.index
            if function.get("arguments"):
                piece_json = {"type": "input_json_delta", "partial_json": function["arguments"]}
                events.append(self._delta(self.calls[number], piece_json))
        return events

    def close(self) -> list[tuple[str, dict]]:
        if self.open_kind is None:
            return []
        self.open_kind = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open(self, block: dict, kind: str) -> list[tuple[str, dict]]:
        events = self.close()
        self.index += 1
        self.open_kind = kind
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block})
        )
        return events

    @staticmethod
    def _delta(index: int, delta: dict) -> tuple[str, dict]:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
