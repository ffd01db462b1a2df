"""The body of ``POST /api/v1/responses``, checked: every bad field is named (400).

Accepted: ``model`` (required: a model the server routes), ``input`` (a string, or a list of messages
``{role: user|assistant|system|developer, content}`` whose content is a string or a list of text parts
``{type: input_text|output_text|text, text}``; ``type: "message"`` items replayed from an earlier response
are messages too), ``instructions``, ``max_output_tokens`` (1 to 1,000,000), ``temperature`` (0 to 2),
``stream``, ``store`` (default false), ``previous_response_id``, ``tool_choice``, ``max_tool_calls``, and
``tools`` holding one ``{type: file_search, dataset_ids?}`` (`file_search`; a ``tool_choice`` of ``none``,
or ``max_tool_calls: 0``, turns it off; ``required`` and ``{type: function, name: file_search}`` keep it
on). Refused with a reason: any other tool (the server runs
no MCP servers), ``background: true``, ``agentic_memory: true``, ``stack:`` models, and input parts that are
not text (images, files, tool calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import Issue, ValidationError

ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text", "text")
MAX_OUTPUT_TOKENS = 1_000_000
MAX_INPUT_ITEMS = 1_000


@dataclass(frozen=True)
class InputMessage:
    """One input message: its role as sent and its text."""

    role: str
    text: str


@dataclass(frozen=True)
class FileSearchTool:
    """The ``file_search`` tool of a request: the datasets it searches (None: all)."""

    dataset_ids: list[str] | None


@dataclass(frozen=True)
class ResponseRequest:
    model: str
    messages: tuple[InputMessage, ...]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False
    store: bool = False
    previous_response_id: str | None = None
    tool_choice: str = "auto"
    file_search: FileSearchTool | None = None


def _flag(body: Mapping[str, Any], field: str, issues: list[Issue], default: bool = False) -> bool:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, bool):
        issues.append(Issue(field, "must be true or false"))
        return default
    return value


def _text_of(content: Any, where: str, issues: list[Issue]) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        issues.append(Issue(where, "must be a string or a non-empty list of text parts"))
        return None
    texts: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in TEXT_PARTS:
            issues.append(
                Issue(
                    f"{where}[{j}].type",
                    f"must be one of {', '.join(TEXT_PARTS)}: only text input is supported",
                )
            )
        elif not isinstance(part.get("text"), str):
            issues.append(Issue(f"{where}[{j}].text", "must be a string"))
        else:
            texts.append(part["text"])
    return "".join(texts)


def _messages(value: Any, issues: list[Issue]) -> tuple[InputMessage, ...]:
    if isinstance(value, str):
        if not value.strip():
            issues.append(Issue("input", "must not be empty"))
        return (InputMessage("user", value),)
    if not isinstance(value, list) or not value:
        issues.append(Issue("input", "is required: a string, or a non-empty list of messages"))
        return ()
    if len(value) > MAX_INPUT_ITEMS:
        issues.append(Issue("input", f"must hold at most {MAX_INPUT_ITEMS} items"))
        return ()
    messages: list[InputMessage] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, Mapping):
            issues.append(Issue(where, "must be a message object {role, content}"))
            continue
        if item.get("type", "message") != "message":
            issues.append(Issue(f"{where}.type", "must be 'message': only messages are supported as input"))
            continue
        role = item.get("role")
        if role not in ROLES:
            issues.append(Issue(f"{where}.role", f"must be one of {', '.join(ROLES)}"))
            continue
        text = _text_of(item.get("content"), f"{where}.content", issues)
        if text is not None:
            messages.append(InputMessage(str(role), text))
    return tuple(messages)


def parse_response_request(body: Any) -> ResponseRequest:
    """The checked request.

    Raises:
        ValidationError: one issue per bad field.
    """
    if not isinstance(body, Mapping):
        raise ValidationError.of("body", "must be a JSON object with model and input")
    issues: list[Issue] = []
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        issues.append(Issue("model", "is required: a model name from GET /api/v1/models"))
    elif model.startswith("stack:"):
        issues.append(Issue("model", "stack: models are not served by this server; use GET /api/v1/models"))
    messages = _messages(body.get("input"), issues)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        issues.append(Issue("instructions", "must be a string"))
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int | float)
        or max_tokens != int(max_tokens)
        or not 1 <= max_tokens <= MAX_OUTPUT_TOKENS
    ):
        issues.append(Issue("max_output_tokens", f"must be a whole number from 1 to {MAX_OUTPUT_TOKENS}"))
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        issues.append(Issue("temperature", "must be a number from 0 to 2"))
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        issues.append(Issue("previous_response_id", "must be the id of a stored response"))
    file_search = _tools(body.get("tools"), issues)
    tool_choice = body.get("tool_choice", "auto")
    if tool_choice in (None, "required", {"type": "function", "name": "file_search"}):
        tool_choice = "auto"
    if tool_choice not in ("auto", "none"):
        issues.append(
            Issue("tool_choice", "must be auto, none, required or {type: function, name: file_search}")
        )
    max_tool_calls = body.get("max_tool_calls")
    if max_tool_calls is not None and (
        isinstance(max_tool_calls, bool) or not isinstance(max_tool_calls, int) or max_tool_calls < 0
    ):
        issues.append(Issue("max_tool_calls", "must be a whole number, 0 or more"))
    if _flag(body, "background", issues):
        issues.append(Issue("background", "only false is supported: responses are answered in the request"))
    if _flag(body, "agentic_memory", issues):
        issues.append(Issue("agentic_memory", "is not supported by this server: use previous_response_id"))
    stream = _flag(body, "stream", issues)
    store = _flag(body, "store", issues)
    if issues:
        raise ValidationError(issues)
    return ResponseRequest(
        model=str(model).strip(),
        messages=messages,
        instructions=instructions,
        max_output_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=float(temperature) if temperature is not None else None,
        stream=stream,
        store=store,
        previous_response_id=previous,
        tool_choice=str(tool_choice),
        file_search=None if tool_choice == "none" or max_tool_calls == 0 else file_search,
    )


def _tools(value: Any, issues: list[Issue]) -> FileSearchTool | None:
    if value is None:
        return None
    if not isinstance(value, list):
        issues.append(Issue("tools", "must be a list of tools"))
        return None
    found: FileSearchTool | None = None
    for i, tool in enumerate(value):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind != "file_search":
            issues.append(
                Issue(f"tools[{i}].type", "only file_search is supported: this server runs no MCP servers")
            )
            continue
        if found is not None:
            issues.append(Issue(f"tools[{i}]", "give file_search once"))
            continue
        ids = tool.get("dataset_ids")
        if ids is not None and (
            not isinstance(ids, list) or not ids or not all(isinstance(d, str) and d for d in ids)
        ):
            issues.append(Issue(f"tools[{i}].dataset_ids", "must be a non-empty list of dataset ids"))
            continue
        found = FileSearchTool(list(ids) if ids is not None else None)
    return found
