"""Structured output: parse a reply as JSON and check it against the request's JSON schema (Draft 2020-12).

Models often wrap JSON in a Markdown fence or in prose ("Here is the JSON: {...}"), so a ```json fence (or a
bare ``` fence) and the first object or array inside prose are read too (`parse_json_text`). When the
output does not parse or does not validate, the gateway makes a bounded repair retry: it appends the bad
output (cut to `MAX_ECHOED_CHARS`) and the validation error to the conversation (`repair_request`) and asks
again; if that fails too, the call fails with an `OutputValidationError` that says why, and the step rejects
the row with that reason. Compiled validators are cached per schema, so validating costs one dict lookup
plus the validation itself.

Model output is untrusted: a string in it that carries a chat template's control tokens (``<|im_start|>``,
``[INST]``, ``<|eot_id|>``, ...) could pose as a new turn, or a system prompt, once a later step puts the
value into its own prompt. Such output fails validation like any other bad output.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, relevance
from jsonschema.exceptions import ValidationError as JsonSchemaError

from datamill.core.errors import OutputValidationError, ValidationError
from datamill.llm.types import ChatRequest, Message

_NOTHING = object()
_JSON_START = re.compile(r"[\[{]")
_DECODER = json.JSONDecoder()
#: Opening brackets tried when looking for JSON inside prose (a long reply full of brackets stays cheap).
_MAX_EMBEDDED_STARTS = 32
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)
_VALIDATORS: dict[bytes, Draft202012Validator] = {}
_MAX_CACHED_VALIDATORS = 256
#: Errors named in one message: enough for a repair to fix several at once, short enough to read.
_MAX_SHOWN_ERRORS = 3
#: Longest bad output echoed back in a repair request (a runaway reply must not double the next call's cost).
MAX_ECHOED_CHARS = 4000
#: Control tokens of common chat templates (ChatML, Llama 2 and 3, Gemma, Mistral, Phi, ...).
#: Shared with the free-text injection detector of the steps, so both check one list.
CONTROL_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)"
    r"\|>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>",
    re.IGNORECASE,
)


#: Keywords a strict-mode schema may keep (OpenAI structured outputs' supported subset).
_STRICT_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
        "description", "title", "$defs", "$ref", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "pattern", "format", "minItems", "maxItems",
    }
)  # fmt: skip
#: Keywords left out of the strict copy: the provider does not enforce them, the gateway's validation does.
_VALIDATED_HERE = frozenset({"minLength", "maxLength", "uniqueItems", "minProperties", "maxProperties"})
_STRICT: dict[bytes, dict[str, Any] | None] = {}


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """``schema`` in the form strict structured outputs accept, or None when it has no such form.

    Strict mode (OpenAI ``json_schema`` with ``strict: true``) constrains decoding to the schema, so the
    reply parses and has the right shape; it needs an object at the root, every object closed
    (``additionalProperties: false``, added when absent) with all its properties required, and only the
    keywords it supports. Length and uniqueness keywords are left out of the copy and still checked by
    `validate_output`. A schema with optional properties, open objects, ``allOf``/``oneOf``/``not`` or
    conditionals has no strict form; it is sent without ``strict`` and validated as before.
    """
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    if key not in _STRICT:
        if len(_STRICT) >= _MAX_CACHED_VALIDATORS:
            _STRICT.clear()
        _STRICT[key] = _strict(schema) if schema.get("type") == "object" else None
    return _STRICT[key]


def _strict(node: Any) -> Any:
    """A strict copy of a schema node; None anywhere below means the schema has no strict form."""
    if not isinstance(node, dict):
        return None
    out: dict[str, Any] = {}
    for name, value in node.items():
        if name in _VALIDATED_HERE:
            continue
        if name not in _STRICT_KEYWORDS:
            return None
        if name in ("properties", "$defs"):
            children = {k: _strict(v) for k, v in value.items()}
            if any(v is None for v in children.values()):
                return None
            out[name] = children
        elif name == "items" or name == "anyOf":
            children_list = [_strict(v) for v in value] if name == "anyOf" else [_strict(value)]
            if any(v is None for v in children_list):
                return None
            out[name] = children_list if name == "anyOf" else children_list[0]
        else:
            out[name] = value
    if node.get("type") == "object" or "properties" in node:
        if node.get("additionalProperties", False) is not False:
            return None
        if set(node.get("required", ())) != set(node.get("properties", {})):
            return None  # optional properties have no strict form without changing the reply's shape
        out["additionalProperties"] = False
        out.setdefault("properties", {})
        out["required"] = list(node.get("required", ()))
    return out


def schema_instruction(schema: dict[str, Any]) -> str:
    """What to tell a model that cannot enforce a schema itself."""
    return (
        "Reply with only a JSON value that matches this JSON schema, with no prose and no code fence:\n"
        + orjson.dumps(schema).decode()
    )


def parse_json_text(text: str) -> Any:
    """The JSON value in a reply: the whole reply, a Markdown fence, or the first object or array in prose.

    Raises:
        OutputValidationError: the reply holds no parseable JSON.
    """
    for value in json_candidates(text):
        return value
    raise _not_json(text)


def json_candidates(text: str) -> Iterator[Any]:
    """The JSON values a reply may mean, most likely first.

    In order: the reply as it is; the content of its first ```json (or bare ```) fence; each JSON object or
    array that starts inside the reply ("Here is the answer: {...} Hope this helps."), up to
    `_MAX_EMBEDDED_STARTS` opening brackets. Scalars are only taken from the whole reply or a fence, never
    picked out of prose.
    """
    candidate = text.strip()
    whole = _loads(candidate)
    if whole is not _NOTHING:
        yield whole
        return
    if "```" in candidate:
        match = _FENCE.search(candidate)
        fenced = _NOTHING if match is None else _loads(match.group(1).strip())
        if fenced is not _NOTHING:
            yield fenced
    for tried, match in enumerate(_JSON_START.finditer(candidate)):
        if tried >= _MAX_EMBEDDED_STARTS:
            break
        try:
            value, _ = _DECODER.raw_decode(candidate, match.start())
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's json allows
            continue
        yield value


def _loads(text: str) -> Any:
    """``text`` parsed as JSON, or `_NOTHING`."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NOTHING


def _not_json(text: str) -> OutputValidationError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return OutputValidationError(f"model output is not valid JSON: {shown!r}")


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A compiled validator for ``schema`` (cached).

    Raises:
        ValidationError: the schema itself is not a valid JSON schema.
    """
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    validator = _VALIDATORS.get(key)
    if validator is None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValidationError.of("json_schema", f"not a valid JSON schema: {exc.message}") from None
        if len(_VALIDATORS) >= _MAX_CACHED_VALIDATORS:
            _VALIDATORS.clear()
        validator = _VALIDATORS[key] = Draft202012Validator(schema)
    return validator


def validate_output(text: str, schema: dict[str, Any]) -> Any:
    """Parse ``text`` and check it against ``schema``; returns the parsed value.

    Raises:
        OutputValidationError: the text is not JSON, or the value breaks the schema (the message says where).
    """
    validator = validator_for(schema)
    data: Any = _NOTHING
    errors: list[JsonSchemaError] = []
    for value in json_candidates(text):
        found = sorted(validator.iter_errors(value), key=relevance)
        if not found:
            data, errors = value, []
            break
        if data is _NOTHING:  # the likeliest reading is the one whose errors are shown
            data, errors = value, found
    if data is _NOTHING:
        raise _not_json(text)
    if not errors:
        token = control_token_in(data)
        if token is not None:
            raise OutputValidationError(
                f"model output holds the chat control token {token!r}; write plain text without it"
            )
    if errors:
        shown = "; ".join(_describe(e) for e in errors[:_MAX_SHOWN_ERRORS])
        more = f" (and {len(errors) - _MAX_SHOWN_ERRORS} more)" if len(errors) > _MAX_SHOWN_ERRORS else ""
        raise OutputValidationError(f"model output does not match the JSON schema {shown}{more}")
    return data


def control_token_in(value: Any) -> str | None:
    """The first chat-template control token in any string of ``value`` (keys included), else None."""
    stack = [value]
    while stack:  # a loop, not recursion: parsed JSON may nest a thousand levels
        item = stack.pop()
        if isinstance(item, str):
            match = CONTROL_TOKENS.search(item)
            if match is not None:
                return match.group(0)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _describe(error: JsonSchemaError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def repair_request(request: ChatRequest, bad_text: str, error: OutputValidationError) -> ChatRequest:
    """``request`` with the bad reply and the reason appended, asking for a corrected reply."""
    feedback = (
        f"That reply was rejected: {error}. Reply again with only a JSON value that matches the schema, "
        "with no prose and no code fence."
    )
    echoed = bad_text if len(bad_text) <= MAX_ECHOED_CHARS else bad_text[:MAX_ECHOED_CHARS] + " [cut]"
    messages = (*request.messages, Message("assistant", echoed), Message("user", feedback))
    return dataclasses.replace(request, messages=messages)
