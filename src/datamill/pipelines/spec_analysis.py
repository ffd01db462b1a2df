"""Spec analysis: seed examples (or the user's objectives) → a validated generation spec as YAML.

The model reads a seeded random sample of the seeds that fits `ANALYSIS_SEED_TOKENS` and answers JSON under
`reply_schema`: a description, requirements, and properties, each with values and percentages (and, when
asked, conditional mixes given another property's value). The reply is then made into a valid spec rather
than rejected, since small models are loose:

- property names and values are trimmed; empty and repeated ones are dropped; at most `MAX_VALUES` values;
- percentages are rescaled to sum to 100 (models rarely add up exactly); all-zero, or
  ``generate_distributions`` off, gives a uniform mix;
- a conditional mix is kept only when its parent is another kept property that has no parent itself (so no
  cycle can form) and its parent value exists; unknown child values in it are dropped.

The result round-trips through `datamill.core.spec.parse_spec`, so what is stored is always a valid spec.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamill.core.errors import ValidationError
from datamill.core.spec import PropertyAxis, Spec, parse_spec
from datamill.llm.types import ChatRequest
from datamill.steps.generation.seeds import SeedSet, shuffled, within_budget
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Tokens of seed text the analysis model reads (the rest of the seeds are not shown).
ANALYSIS_SEED_TOKENS = 8_000
#: Most values kept per property.
MAX_VALUES = 20
#: Output budget of the analysis call.
MAX_OUTPUT_TOKENS = 2_048
TAG = "spec_analysis"

_PERCENTS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {"value": {"type": "string"}, "percentage": {"type": "number", "minimum": 0}},
        "required": ["value", "percentage"],
    },
}


@dataclass(frozen=True)
class SpecAnalysisOptions:
    """The spec-create options of the contract (§6.1) that shape the analysis."""

    extrapolate_values: bool = False
    extrapolate_axes: bool = False
    generate_distributions: bool = True
    generate_conditional_distributions: bool = False
    seed: int = 0
    seed_tokens: int = ANALYSIS_SEED_TOKENS


@dataclass(frozen=True)
class SpecDraft:
    """What analysis produced: the spec, its YAML, and how many seeds the model read."""

    spec: Spec
    yaml: str
    seeds_read: int


def reply_schema(conditional: bool) -> dict[str, Any]:
    """The JSON schema of the analysis reply."""
    prop: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "values": _PERCENTS},
        "required": ["name", "description", "values"],
    }
    if conditional:
        mix = {"type": "object", "properties": {"parent_value": {"type": "string"}, "values": _PERCENTS}}
        prop["properties"]["depends_on"] = {"type": "string"}
        prop["properties"]["conditional"] = {
            "type": "array",
            "items": mix | {"required": list(mix["properties"])},
        }
    return {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "requirements": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "properties": {"type": "array", "minItems": 1, "items": prop},
        },
        "required": ["description", "requirements", "properties"],
    }


def analysis_request(
    seeds: SeedSet | None, objectives: str | None, options: SpecAnalysisOptions
) -> tuple[ChatRequest, int]:
    """The request the analysis sends, and how many seeds it shows."""
    shown = []
    if seeds is not None:
        order = shuffled(seeds.seeds, random.Random(options.seed))
        shown = within_budget(order, options.seed_tokens)
    messages = load_template("gen_spec").render(
        seeds=[s.text for s in shown],
        objectives=objectives or "",
        extrapolate_values=options.extrapolate_values,
        extrapolate_axes=options.extrapolate_axes,
        distributions=options.generate_distributions,
        conditional=options.generate_conditional_distributions,
    )
    schema = reply_schema(options.generate_conditional_distributions)
    return ChatRequest(messages, max_tokens=MAX_OUTPUT_TOKENS, temperature=0.2, json_schema=schema), len(
        shown
    )


async def analyse_seeds(
    seeds: SeedSet,
    model: ModelHandle,
    options: SpecAnalysisOptions | None = None,
    *,
    objectives: str | None = None,
) -> SpecDraft:
    """Write a spec from seed examples (``objectives``, when given, steer it further)."""
    options = options or SpecAnalysisOptions()
    request, shown = analysis_request(seeds, objectives, options)
    result = await model.chat(request, tag=TAG)
    metadata = {"dataset_type": seeds.dataset_type, "seed_samples": len(seeds.seeds), "seeds_read": shown}
    spec = spec_from_reply(result.data, options, _metadata(model, options, metadata))
    return SpecDraft(spec, spec.to_yaml(), shown)


async def spec_from_objectives(
    objectives: str, model: ModelHandle, options: SpecAnalysisOptions | None = None
) -> SpecDraft:
    """Write a seedless spec from the user's generation objectives."""
    if not objectives.strip():
        raise ValidationError.of("generation_objectives", "is required for a spec without seeds")
    options = options or SpecAnalysisOptions()
    request, _ = analysis_request(None, objectives, options)
    result = await model.chat(request, tag=TAG)
    metadata = {"dataset_type": "MULTI_FILE", "generation_objectives": objectives}
    spec = spec_from_reply(result.data, options, _metadata(model, options, metadata))
    return SpecDraft(spec, spec.to_yaml(), 0)


def spec_from_reply(data: Any, options: SpecAnalysisOptions, metadata: Mapping[str, Any]) -> Spec:
    """Turn the model's JSON reply into a valid spec (see the module docstring for the repairs)."""
    reply = data if isinstance(data, Mapping) else {}
    description = str(reply.get("description") or "").strip() or "Generated samples"
    requirements = tuple(str(r).strip() for r in reply.get("requirements") or [] if str(r).strip())
    axes: list[PropertyAxis] = []
    for item in reply.get("properties") or []:
        axis = _axis(item, options.generate_distributions, {a.name for a in axes})
        if axis is not None:
            axes.append(axis)
    axes = _with_conditionals(axes, reply.get("properties") or [], options)
    spec = Spec(description, requirements, tuple(axes), dict(metadata))
    return parse_spec(spec.to_dict())  # the guarantee that what is stored is valid


def _metadata(model: ModelHandle, options: SpecAnalysisOptions, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **extra,
        "spec_generation_model_name": model.name,
        "extrapolate_values": options.extrapolate_values,
        "extrapolate_axes": options.extrapolate_axes,
        "generate_distributions": options.generate_distributions,
        "generate_conditional_distributions": options.generate_conditional_distributions,
    }


def _axis(item: Any, distributions: bool, taken: set[str]) -> PropertyAxis | None:
    if not isinstance(item, Mapping):
        return None
    name = str(item.get("name") or "").strip()
    mix = _mix(item.get("values"), None, distributions)
    if not name or name in taken or not mix:
        return None
    description = str(item.get("description") or "").strip() or None
    return PropertyAxis(name, tuple(mix), mix, description)


def _mix(items: Any, allowed: Sequence[str] | None, distributions: bool) -> dict[str, float]:
    """Value → probability from ``[{value, percentage}]``, cleaned and rescaled (else uniform)."""
    weights: dict[str, float] = {}
    for entry in items if isinstance(items, list) else []:
        if not isinstance(entry, Mapping):
            continue
        value = str(entry.get("value") or "").strip()
        pct = entry.get("percentage")
        ok = value and value not in weights and (allowed is None or value in allowed)
        if ok and len(weights) < MAX_VALUES:
            weights[value] = float(pct) if isinstance(pct, int | float) and pct > 0 else 0.0
    total = sum(weights.values())
    if not distributions or total <= 0:
        return {v: 1 / len(weights) for v in weights}
    return {v: w / total for v, w in weights.items()}


def _with_conditionals(
    axes: list[PropertyAxis], items: Sequence[Any], options: SpecAnalysisOptions
) -> list[PropertyAxis]:
    if not options.generate_conditional_distributions:
        return axes
    raw: dict[str, Mapping[str, Any]] = {}
    for item in items:  # the first entry of a name is the one kept as an axis
        if isinstance(item, Mapping):
            raw.setdefault(str(item.get("name") or "").strip(), item)
    by_name = {a.name: a for a in axes}
    out: list[PropertyAxis] = []
    for axis in axes:
        item = raw.get(axis.name, {})
        parent = by_name.get(str(item.get("depends_on") or "").strip())
        table: dict[str, dict[str, float]] = {}
        if parent is not None and parent is not axis and "depends_on" not in raw.get(parent.name, {}):
            for mix in item.get("conditional") or []:
                pv = str(mix.get("parent_value") or "").strip() if isinstance(mix, Mapping) else ""
                found = _mix(mix.get("values"), axis.values, True) if pv in parent.values else {}
                if found:
                    table[pv] = found
        if table and parent is not None:
            axis = PropertyAxis(axis.name, axis.values, axis.base, axis.description, parent.name, table)
        out.append(axis)
    return out
