"""A deterministic fake model that ships in the package, for tests and demos.

The same request always gets the same reply:

- text requests: ``"[fake] "`` + the first 200 characters of the last user message, whitespace collapsed, so a
  pipeline demo shows visibly transformed text;
- JSON-schema requests: a value built from the schema that validates against it (objects with their declared
  properties, strings derived from a hash of the prompt, enums and consts their first value, numbers their
  minimum or 0, arrays ``minItems`` items), serialised as JSON text.

Usage is estimated as ceil(characters / 4) tokens; thinking routes also report thinking tokens (as many as
the reply, capped by the budget). A ``responder`` callable replaces the default reply to script a test.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from typing import Any

import orjson

from datamill.llm.http.interface import Transport
from datamill.llm.types import ChatRequest, ProviderReply, Route, Usage

Responder = Callable[[Route, ChatRequest], str]
_TEXT_LIMIT = 200
_MAX_DEPTH = 8


class FakeProvider:
    """Answers every request locally and deterministically; records the latest requests in ``calls``.

    ``calls`` keeps at least the latest `KEPT_CALLS` requests (at most twice that), so a long run on the fake
    model (a server's demo route, a benchmark of 200,000 rows) does not keep every request it made;
    ``call_count`` counts them all.
    """

    #: Requests ``calls`` keeps at least (the older half is dropped when it holds twice as many).
    KEPT_CALLS = 1000

    def __init__(
        self,
        transport: Transport | None = None,
        *,
        responder: Responder | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self._responder = responder
        self._latency_s = latency_s
        self.calls: list[ChatRequest] = []
        self.call_count = 0

    async def complete(self, route: Route, request: ChatRequest) -> ProviderReply:
        self.call_count += 1
        if len(self.calls) >= 2 * self.KEPT_CALLS:
            del self.calls[: self.KEPT_CALLS]
        self.calls.append(request)
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        text = self._responder(route, request) if self._responder else default_reply(request)
        prompt_chars = sum(len(m.content) for m in request.messages)
        output = _tokens(text)
        thinking = (
            min(output, request.thinking_budget or route.default_thinking_budget) if route.thinking else 0
        )
        return ProviderReply(text, Usage(_tokens(prompt_chars), output, thinking), "stop")

    async def aclose(self) -> None:
        """Nothing to release."""


def _tokens(chars: str | int) -> int:
    n = chars if isinstance(chars, int) else len(chars)
    return math.ceil(n / 4)


def default_reply(request: ChatRequest) -> str:
    """The fake model's reply to ``request``."""
    if request.json_schema is not None:
        seed = _digest(request)
        return orjson.dumps(fake_value(request.json_schema, seed)).decode()
    last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    return "[fake] " + " ".join(last_user.split())[:_TEXT_LIMIT]


def _digest(request: ChatRequest) -> str:
    text = "\x00".join(m.content for m in request.messages)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def fake_value(schema: Any, seed: str, *, root: Any = None, name: str = "value", depth: int = 0) -> Any:
    """A deterministic value that validates against ``schema`` (common keywords; no ``pattern``)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return fake_value(_resolve_ref(root, schema["$ref"]), seed, root=root, name=name, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("oneOf", "anyOf", "allOf"):
        if schema.get(combinator):
            return fake_value(schema[combinator][0], seed, root=root, name=name, depth=depth + 1)
    kind = _type_of(schema)
    builder = _BUILDERS.get(kind)
    return builder(schema, seed, root, name, depth) if builder else None


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"
    return str(kind)


def _resolve_ref(root: Any, ref: str) -> Any:
    node = root
    for part in ref.lstrip("#/").split("/") if ref.startswith("#") else []:
        node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
    return node


def _string(schema: dict[str, Any], seed: str, root: Any, name: str, depth: int) -> str:
    formats = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "email": f"{seed}@example.com"}
    formats |= {"uri": f"https://example.com/{seed}", "uuid": f"{seed}-0000-4000-8000-000000000000"}
    if schema.get("format") in formats:
        return formats[schema["format"]]
    text = f"{name}-{seed}"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < low:
        text = (text + "x" * low)[:low]
    return text[:high] if high is not None else text


def _number(schema: dict[str, Any], seed: str, root: Any, name: str, depth: int) -> float | int:
    integer = _type_of(schema) == "integer"
    if "minimum" in schema:
        value = schema["minimum"]
    elif "exclusiveMinimum" in schema:
        value = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    elif "maximum" in schema:
        value = min(0, schema["maximum"])
    elif "exclusiveMaximum" in schema:
        value = min(0, schema["exclusiveMaximum"] - 1)
    else:
        value = 0
    if not isinstance(value, int | float):
        return 0
    return math.ceil(value) if integer else value


def _array(schema: dict[str, Any], seed: str, root: Any, name: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems") or []
    count = max(schema.get("minItems", 0), len(prefix))
    items = [
        fake_value(s, seed, root=root, name=f"{name}-{i}", depth=depth + 1) for i, s in enumerate(prefix)
    ]
    item_schema = schema.get("items", {"type": "string"})
    items += [
        fake_value(item_schema, f"{seed}{i}", root=root, name=name, depth=depth + 1)
        for i in range(len(items), count)
    ]
    return items


def _object(schema: dict[str, Any], seed: str, root: Any, name: str, depth: int) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties") or {}
    out = {key: fake_value(sub, seed, root=root, name=key, depth=depth + 1) for key, sub in props.items()}
    for key in schema.get("required") or []:
        if key not in out:
            out[key] = f"{key}-{seed}"
    return out


_BUILDERS: dict[str, Callable[[dict[str, Any], str, Any, str, int], Any]] = {
    "string": _string,
    "number": _number,
    "integer": _number,
    "boolean": lambda *_: True,
    "null": lambda *_: None,
    "array": _array,
    "object": _object,
}
