"""Writing a sample's first draft: outline then part by part, one call, or field by field.

- Text samples, outline on (the default): the outline model plans up to `MAX_SECTIONS` sections (JSON), then
  the generation model writes each section in turn, seeing the outline and what is written so far; the
  sections are joined with blank lines. Right for long documents.
- Text samples with ``skip_outline``: one call drafts the whole sample. Faster and cheaper.
- Structured samples (seeds are rows): no outline (rows are short). With ``unified_multifield`` one call
  returns every field as JSON under the seeds' schema; otherwise one call per field, in the seeds' key order,
  each seeing the fields written before it. Field texts are read as the seed's type where they parse
  (numbers, booleans) and kept as text otherwise.

A draft is *truncated* when any of its calls stopped at ``max_tokens``; the run rejects such a candidate
whatever its filters (gate ``truncated``), and so it does when a later call that rewrites the sample (a
revision, a calculator fix) is cut: those raise `OutputCut` (see `raise_if_cut`). A call whose reply carries
an instruction-injection marker (`datamill.steps.injection`; markers already in the request, such as in the
seeds, are excused) raises `InjectedOutput`: the candidate fails and is regenerated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest, ChatResult
from datamill.steps.generation.sample import SampleTask, SeedPicker
from datamill.steps.injection import raise_on_injection
from datamill.steps.templates import load_template, without_cache_point

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Most sections an outline may have.
MAX_SECTIONS = 6
#: Output cap of one draft, section or field call.
MAX_DRAFT_TOKENS = 2_048
#: Sampling temperature of drafts: high enough that samples of the same properties differ.
DRAFT_TEMPERATURE = 0.9

OUTLINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sections": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SECTIONS,
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
                "required": ["title", "summary"],
            },
        }
    },
    "required": ["sections"],
}


class OutputCut(Exception):
    """A call that writes the sample stopped at the token limit: the candidate must not be delivered."""


def raise_if_cut(stage: str, result: ChatResult, max_tokens: int) -> None:
    """Raise `OutputCut` when ``result`` stopped at the token limit (``finish_reason`` "length")."""
    if _cut(result):
        raise OutputCut(f"{stage}: the reply was cut off at the token limit ({max_tokens} tokens)")


@dataclass(frozen=True)
class Draft:
    """A written sample: its text (JSON text for structured samples) and whether a call was cut short."""

    text: str
    truncated: bool = False


@dataclass(frozen=True)
class WriterOptions:
    skip_outline: bool = False
    unified_multifield: bool = False
    max_tokens: int = MAX_DRAFT_TOKENS
    generation_thinking_budget: int | None = None
    outline_thinking_budget: int | None = None


class SampleWriter:
    """Writes drafts with the generation model (and the outline model for long documents)."""

    name: ClassVar[str] = "gen_write"

    def __init__(
        self,
        generation: ModelHandle,
        outline: ModelHandle,
        picker: SeedPicker,
        field_schema: dict[str, Any] | None = None,
        options: WriterOptions | None = None,
    ) -> None:
        self.generation = generation
        self.outline = outline
        self.picker = picker
        self.field_schema = field_schema or {}
        self.options = options or WriterOptions()
        self.draft_template = load_template("gen_draft")
        self.outline_template = load_template("gen_outline")

    def requests_for(self, task: SampleTask) -> list[ChatRequest]:
        """The first request a draft of ``task`` sends (the outline, or the draft, or the first field)."""
        if task.field_names:
            field = "" if self.options.unified_multifield else task.field_names[0]
            return [self._field_request(task, field, {})]
        if self.options.skip_outline:
            return [self._draft_request(task, "draft", {})]
        return [self._outline_request(task)]

    async def write(self, task: SampleTask) -> Draft:
        """A first draft of ``task``."""
        if task.field_names:
            return await self._write_fields(task)
        if self.options.skip_outline:
            result = await self._send(self.generation, self._draft_request(task, "draft", {}))
            return Draft(result.text.strip(), _cut(result))
        return await self._write_by_outline(task)

    async def _write_by_outline(self, task: SampleTask) -> Draft:
        plan = await self._send(self.outline, self._outline_request(task), tag="gen_outline")
        sections = [s for s in (plan.data or {}).get("sections", []) if isinstance(s, dict)]
        parts: list[str] = []
        truncated = False
        for number, section in enumerate(sections[:MAX_SECTIONS], start=1):
            extra = {"outline": sections, "section": section, "section_number": number}
            request = self._draft_request(task, f"section{number}", extra | {"written": "\n\n".join(parts)})
            result = await self._send(self.generation, request)
            truncated = truncated or _cut(result)
            if result.text.strip():
                parts.append(result.text.strip())
        return Draft("\n\n".join(parts), truncated)

    async def _write_fields(self, task: SampleTask) -> Draft:
        if self.options.unified_multifield:
            result = await self._send(self.generation, self._field_request(task, "", {}))
            return Draft(json.dumps(result.data, ensure_ascii=False), _cut(result))
        values: dict[str, Any] = {}
        truncated = False
        for name in task.field_names:
            result = await self._send(self.generation, self._field_request(task, name, values))
            truncated = truncated or _cut(result)
            values[name] = coerce(result.text.strip(), self._type_of(name))
        return Draft(json.dumps(values, ensure_ascii=False), truncated)

    def _outline_request(self, task: SampleTask) -> ChatRequest:
        seeds = self.picker.pick(task, "outline")
        messages = self.outline_template.render(**task.variables(), seeds=seeds, max_sections=MAX_SECTIONS)
        if not self.picker.shares_prefix:
            messages = without_cache_point(messages)
        return ChatRequest(
            messages,
            max_tokens=self.options.max_tokens,
            temperature=DRAFT_TEMPERATURE,
            json_schema=OUTLINE_SCHEMA,
            thinking_budget=self.options.outline_thinking_budget,
            seed=task.request_seed("outline"),
        )

    def _draft_request(self, task: SampleTask, call: str, extra: dict[str, Any]) -> ChatRequest:
        base: dict[str, Any] = {
            "outline": [],
            "section": None,
            "section_number": 0,
            "written": "",
            "field": "",
            "partial": {},
        }
        variables = task.variables() | base | extra
        seeds = self.picker.pick(task, call, str(extra.get("field") or ""))
        messages = self.draft_template.render(**variables, seeds=seeds)
        if not self.picker.shares_prefix:
            messages = without_cache_point(messages)
        schema = self.field_schema if task.field_names and not extra.get("field") else None
        return ChatRequest(
            messages,
            max_tokens=self.options.max_tokens,
            temperature=DRAFT_TEMPERATURE,
            json_schema=schema,
            thinking_budget=self.options.generation_thinking_budget,
            seed=task.request_seed(call),
        )

    def _field_request(self, task: SampleTask, field: str, values: dict[str, Any]) -> ChatRequest:
        return self._draft_request(task, f"field:{field}", {"field": field, "partial": dict(values)})

    def _type_of(self, name: str) -> str:
        return str(self.field_schema.get("properties", {}).get(name, {}).get("type", "string"))

    async def _send(self, model: ModelHandle, request: ChatRequest, tag: str | None = None) -> ChatResult:
        result = await model.chat(request, tag=tag or self.name)
        raise_on_injection(tag or self.name, request, result)
        return result


def coerce(text: str, kind: str) -> Any:
    """A field's text as the JSON type its seeds have, when it parses as one; else the text."""
    if kind in ("integer", "number", "boolean"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind != "boolean" and isinstance(value, int | float) and not isinstance(value, bool):
            return int(value) if kind == "integer" and float(value).is_integer() else value
    return text


def _cut(result: ChatResult) -> bool:
    return result.finish_reason == "length"
