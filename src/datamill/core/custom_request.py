"""A run request's own steps and prompt templates: ``custom_steps`` and ``prompt_templates``.

The run/adapt body may carry, beside the Adaption API's fields:

- ``custom_steps``: a list of step definitions, each the keys of a step file (``datamill adapt --step``):
  ``name``, ``template``, ``output``, and optionally ``schema`` (a JSON schema), ``model``, ``after``,
  ``system``, ``max_tokens``, ``temperature``, ``expected_output_tokens``;
- ``prompt_templates``: built-in prompt names mapped to a template document of the prompts folder's shape,
  ``{"version": 1, "messages": [{"role": ..., "content": ..., "cache": false}, ...]}``.

This module checks their shape and sizes (every issue at once, each naming its field, as every reader in
`core` does). What needs the steps layer (Jinja syntax, the sandbox's refusals, a valid JSON schema, ``after``
naming a step, a built-in template of that name) is checked where they are built:
`datamill.steps.prompt_step.steps_from_specs` and `datamill.steps.templates.compile_documents`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.fields import Issues, describe, join, read_int, read_number, read_object, read_str

#: The keys of a step definition (a step file's, and a request's ``custom_steps`` items).
CUSTOM_STEP_FIELDS = (
    "name",
    "template",
    "output",
    "schema",
    "model",
    "after",
    "system",
    "max_tokens",
    "temperature",
    "expected_output_tokens",
)
#: The most custom steps one request may declare.
MAX_CUSTOM_STEPS = 8
#: The longest template (a step's template or system message, one message of a prompt template).
MAX_TEMPLATE_CHARS = 20_000
#: The largest JSON schema, in characters of its JSON text.
MAX_SCHEMA_CHARS = 20_000
#: The deepest nesting of objects and lists a JSON schema may have.
MAX_SCHEMA_DEPTH = 32
#: The most messages one prompt template may hold.
MAX_TEMPLATE_MESSAGES = 40
#: The most prompt templates one request may override.
MAX_PROMPT_TEMPLATES = 40

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_ .-]{0,127}$")
_TEMPLATE_FIELDS = ("version", "messages")
_MESSAGE_FIELDS = ("role", "content", "cache")
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class CustomStepSpec:
    """One step a request declares; the arguments of `datamill.PromptStep`."""

    name: str
    template: str
    output: str
    schema: Mapping[str, Any] | None = None
    model: str | None = None
    after: str = "completion"
    system: str | None = None
    max_tokens: int = 1024
    temperature: float = 0.2
    expected_output_tokens: int = 128

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "template": self.template, "output": self.output}
        for key in ("schema", "model", "system"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out |= {
            "after": self.after,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "expected_output_tokens": self.expected_output_tokens,
        }
        return out

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of `PromptStep` besides the name."""
        return {k: v for k, v in self.to_dict().items() if k != "name"}


def read_custom_steps(value: object, field: str, issues: Issues) -> tuple[CustomStepSpec, ...] | None:
    """The ``custom_steps`` list (null or left out: none)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        issues.add(field, f"must be a list of step definitions, got {describe(value)}")
        return None
    if len(value) > MAX_CUSTOM_STEPS:
        issues.add(field, f"holds {len(value)} steps; the maximum is {MAX_CUSTOM_STEPS}")
        return None
    before = len(issues)
    specs: list[CustomStepSpec] = []
    for index, item in enumerate(value):
        spec = _read_step(item, join(field, index), issues)
        if spec is not None:
            specs.append(spec)
    names = [spec.name for spec in specs]
    outputs = [spec.output for spec in specs]
    for index, spec in enumerate(specs):
        if names.index(spec.name) != index:
            issues.add(join(join(field, index), "name"), f"{spec.name!r} names an earlier step too")
        if outputs.index(spec.output) != index:
            issues.add(join(join(field, index), "output"), f"{spec.output!r} is an earlier step's column too")
    return None if len(issues) > before else tuple(specs)


def _read_step(value: object, field: str, issues: Issues) -> CustomStepSpec | None:
    before = len(issues)
    obj = read_object(value, field, CUSTOM_STEP_FIELDS, issues)
    if obj is None:
        return None
    name = read_str(obj.get("name"), join(field, "name"), issues, max_length=64)
    if name is not None and not _NAME.match(name):
        issues.add(join(field, "name"), "a name of letters, digits and _, starting with a letter")
    elif name is None and obj.get("name") is None:
        issues.add(join(field, "name"), "give the step a name")
    template = _read_template(obj.get("template"), join(field, "template"), issues, required=True)
    system = _read_template(obj.get("system"), join(field, "system"), issues, required=False)
    output = read_str(obj.get("output"), join(field, "output"), issues, max_length=128)
    if output is not None and not _COLUMN.match(output):
        issues.add(join(field, "output"), "a column name that starts with a letter")
    elif output is None and obj.get("output") is None:
        issues.add(join(field, "output"), "give the column the answer goes into")
    schema = obj.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            issues.add(join(field, "schema"), f"must be a JSON schema (an object), got {describe(schema)}")
        elif _depth(schema) > MAX_SCHEMA_DEPTH:
            issues.add(join(field, "schema"), f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
        elif len(json.dumps(schema, default=str)) > MAX_SCHEMA_CHARS:
            issues.add(join(field, "schema"), f"is longer than {MAX_SCHEMA_CHARS} characters as JSON")
    model = read_str(obj.get("model"), join(field, "model"), issues, max_length=200)
    after = read_str(obj.get("after"), join(field, "after"), issues, max_length=64)
    max_tokens = read_int(obj.get("max_tokens"), join(field, "max_tokens"), issues, minimum=1, maximum=32_768)
    temperature = read_number(
        obj.get("temperature"), join(field, "temperature"), issues, minimum=0, maximum=2
    )
    expected = read_int(
        obj.get("expected_output_tokens"),
        join(field, "expected_output_tokens"),
        issues,
        minimum=1,
        maximum=32_768,
    )
    if len(issues) > before or name is None or template is None or output is None:
        return None
    return CustomStepSpec(
        name=name,
        template=template,
        output=output,
        schema=dict(schema) if isinstance(schema, Mapping) else None,
        model=model,
        after=after or "completion",
        system=system,
        max_tokens=max_tokens or 1024,
        temperature=temperature if temperature is not None else 0.2,
        expected_output_tokens=expected or 128,
    )


def _depth(value: object) -> int:
    """How deeply objects and lists nest in `value` (counted without recursion: any depth is measured)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: list[object] = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        deepest = max(deepest, level)
        if level <= MAX_SCHEMA_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest


def _read_template(value: object, field: str, issues: Issues, *, required: bool) -> str | None:
    if value is None:
        if required:
            issues.add(field, "give the template (Jinja over the row's columns)")
        return None
    return read_str(value, field, issues, max_length=MAX_TEMPLATE_CHARS)


def read_prompt_templates(
    value: object, field: str, issues: Issues
) -> tuple[tuple[str, dict[str, Any]], ...] | None:
    """The ``prompt_templates`` object: (name, document) pairs, sorted by name (null or left out: none)."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        issues.add(field, f"must be an object mapping prompt names to templates, got {describe(value)}")
        return None
    if len(value) > MAX_PROMPT_TEMPLATES:
        issues.add(field, f"holds {len(value)} templates; the maximum is {MAX_PROMPT_TEMPLATES}")
        return None
    before = len(issues)
    documents: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(value, key=str):
        document = _read_document(value[name], join(field, str(name)), issues)
        if document is not None:
            documents.append((str(name), document))
    return None if len(issues) > before else tuple(documents)


def _read_document(value: object, field: str, issues: Issues) -> dict[str, Any] | None:
    before = len(issues)
    obj = read_object(value, field, _TEMPLATE_FIELDS, issues)
    if obj is None:
        return None
    version = read_int(obj.get("version"), join(field, "version"), issues, minimum=1, maximum=10_000)
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        issues.add(join(field, "messages"), f"must be a non-empty list of messages, got {describe(messages)}")
        return None
    if len(messages) > MAX_TEMPLATE_MESSAGES:
        issues.add(
            join(field, "messages"), f"holds {len(messages)} messages; the maximum is {MAX_TEMPLATE_MESSAGES}"
        )
        return None
    read: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = join(join(field, "messages"), index)
        item = read_object(message, where, _MESSAGE_FIELDS, issues)
        if item is None:
            continue
        role = item.get("role")
        if role not in _ROLES:
            issues.add(join(where, "role"), f"must be one of {', '.join(_ROLES)}, got {describe(role)}")
        content = item.get("content")
        if not isinstance(content, str):
            issues.add(join(where, "content"), f"must be a string, got {describe(content)}")
        elif len(content) > MAX_TEMPLATE_CHARS:
            issues.add(
                join(where, "content"),
                f"is {len(content)} characters long; the maximum is {MAX_TEMPLATE_CHARS}",
            )
        cache = item.get("cache", False)
        if not isinstance(cache, bool):
            issues.add(join(where, "cache"), f"must be a boolean, got {describe(cache)}")
        message_out: dict[str, Any] = {"role": role, "content": content}
        if cache:
            message_out["cache"] = True
        read.append(message_out)
    if len(issues) > before:
        return None
    return {"version": version or 1, "messages": read}
