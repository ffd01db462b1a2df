"""The options of a generation run (the Dataframer ``runs.create`` body), validated once for all callers.

| field                      | rule                                                                     |
|----------------------------|--------------------------------------------------------------------------|
| number_of_samples          | required, 1–20000                                                        |
| spec_id / spec_version     | optional here (the server needs them); version ≥ 1                       |
| generation/outline/revision_model | model names; routing is checked when the run starts; with      |
|                            | ``allowed_models`` one of those names (the API's enum)                   |
| *_thinking_budget          | ≥ 1024, and only for a model whose name ends in ``-thinking``            |
| revision_types             | coherence_flow, consistency, distinguishability, conformance             |
| filtering_types            | structural, conformance                                                  |
| max_revision_cycles        | 1–5; `DEFAULT_REVISION_CYCLES` when revisions are on and it is not given |
| enable_revisions           | deprecated: true with neither list given = all revision types + structural |
| seed_shuffling_level       | none, sample, field, prompt (default none: every prompt shows the same   |
|                            | seeds first, so providers serve them from their prompt cache)            |
| max_examples_in_prompt     | ≥ 1; default: as many seeds as fit the seed token budget                |
| unified_multifield, skip_outline | booleans (default false)                                           |
| tools                      | only ``calculator``                                                      |
| databricks_client_id/secret/api_base | kept for the run, never echoed; with                          |
|                            | ``require_databricks_credentials`` all three are required for a          |
|                            | ``databricks/`` model, and the base must be an http(s) URL               |
| seed                       | datamill's own: seed of every random choice (default 0)                 |
| max_output_tokens          | datamill's own: output cap of each draft/revision call, ≥ 16 (2048)     |
| judge_model                | datamill's own: the model of the conformance gate (default: a configured |
|                            | judge role, else the generation model, which the run summary notes)      |
| novelty_threshold          | datamill's own: estimated Jaccard similarity to a seed or an earlier    |
|                            | sample at which a candidate is regenerated, 0.3–1 (0.7); 1 turns the    |
|                            | novelty gate off                                                         |
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from datamill.core.dataframer_models import DATABRICKS_PREFIX
from datamill.core.fields import (
    Issues,
    join,
    read_bool,
    read_enum,
    read_int,
    read_list,
    read_number,
    read_object,
    read_str,
)

MAX_SAMPLES = 20_000
MAX_REVISION_CYCLES = 5
#: The largest spec version (the versions column is a 32-bit integer).
MAX_VERSION = 2**31 - 1
#: Revision cycles when revisions are requested without a count (the SDK advises 2–3 for most documents).
DEFAULT_REVISION_CYCLES = 2
#: Output cap of one draft, section, field or revision call unless the request sets ``max_output_tokens``.
DEFAULT_OUTPUT_TOKENS = 2_048
MIN_OUTPUT_TOKENS = 16
#: Similarity to a seed or an earlier sample at which a candidate is not novel (`steps.generation.novelty`).
DEFAULT_NOVELTY_THRESHOLD = 0.7
#: The lowest novelty threshold accepted: below it, samples on one topic would be refused as copies.
MIN_NOVELTY_THRESHOLD = 0.3
#: The smallest extended-thinking budget the providers accept.
MIN_THINKING_BUDGET = 1024


class RevisionType(StrEnum):
    COHERENCE_FLOW = "coherence_flow"
    CONSISTENCY = "consistency"
    DISTINGUISHABILITY = "distinguishability"
    CONFORMANCE = "conformance"


class FilteringType(StrEnum):
    STRUCTURAL = "structural"
    CONFORMANCE = "conformance"


class SeedShuffling(StrEnum):
    NONE = "none"
    SAMPLE = "sample"
    FIELD = "field"
    PROMPT = "prompt"


class Tool(StrEnum):
    CALCULATOR = "calculator"


_MODELS = ("generation_model", "outline_model", "revision_model")
_BUDGETS = {f"{m.removesuffix('_model')}_thinking_budget": m for m in _MODELS}
_DATABRICKS = ("databricks_client_id", "databricks_client_secret", "databricks_api_base")
_FLAGS = ("enable_revisions", "unified_multifield", "skip_outline")
FIELDS = (
    "number_of_samples",
    "spec_id",
    "spec_version",
    *_MODELS,
    *_BUDGETS,
    "revision_types",
    "filtering_types",
    "max_revision_cycles",
    *_FLAGS,
    "seed_shuffling_level",
    "max_examples_in_prompt",
    "tools",
    "seed",
    "max_output_tokens",
    "novelty_threshold",
    "judge_model",
    *_DATABRICKS,
)


@dataclass(frozen=True)
class GenerationRequest:
    """A validated generation run request; `revision_types`/`filtering_types` are already resolved."""

    number_of_samples: int
    spec_id: str | None = None
    spec_version: int | None = None
    generation_model: str | None = None
    outline_model: str | None = None
    revision_model: str | None = None
    generation_thinking_budget: int | None = None
    outline_thinking_budget: int | None = None
    revision_thinking_budget: int | None = None
    revision_types: tuple[RevisionType, ...] = ()
    filtering_types: tuple[FilteringType, ...] = ()
    max_revision_cycles: int | None = None
    seed_shuffling_level: SeedShuffling = SeedShuffling.NONE
    max_examples_in_prompt: int | None = None
    unified_multifield: bool = False
    skip_outline: bool = False
    tools: tuple[Tool, ...] = ()
    seed: int = 0
    max_output_tokens: int = DEFAULT_OUTPUT_TOKENS
    novelty_threshold: float = DEFAULT_NOVELTY_THRESHOLD
    judge_model: str | None = None
    databricks: tuple[tuple[str, str], ...] = ()

    @property
    def revision_cycles(self) -> int:
        """Cycles actually run: 0 without revision types."""
        if not self.revision_types:
            return 0
        return self.max_revision_cycles or DEFAULT_REVISION_CYCLES

    def runtime_params(self) -> dict[str, Any]:
        """The resolved parameters in the contract's ``RuntimeParams`` shape (no secrets)."""
        revising = bool(self.revision_types or self.filtering_types)
        return {
            "number_of_samples": self.number_of_samples,
            "generation_model": self.generation_model,
            "outline_model": self.outline_model,
            "revision_model": self.revision_model if revising else None,
            "generation_thinking_budget": self.generation_thinking_budget,
            "outline_thinking_budget": self.outline_thinking_budget,
            "revision_thinking_budget": self.revision_thinking_budget,
            "revision_types": [t.value for t in self.revision_types],
            "filtering_types": [t.value for t in self.filtering_types],
            "max_revision_cycles": self.revision_cycles or None,
            "seed_shuffling_level": self.seed_shuffling_level.value,
            "max_examples_in_prompt": self.max_examples_in_prompt,
            "unified_multifield": self.unified_multifield,
            "skip_outline": self.skip_outline,
            "tools": [t.value for t in self.tools],
        }


def parse_generation_request(
    body: object,
    field_prefix: str = "",
    *,
    allowed_models: Collection[str] | None = None,
    require_databricks_credentials: bool = False,
) -> GenerationRequest:
    """Validate a run body; raises one `ValidationError` naming every bad field.

    Args:
        body: the JSON body.
        field_prefix: the path of the body in a larger document, for the issues' field names.
        allowed_models: when given, the only model names accepted (the wire API's enum); the library and
            CLI leave it out and accept any name the routing file knows.
        require_databricks_credentials: a ``databricks/`` model needs the request's own Databricks client
            id, secret and API base (the wire API: the run is served from the caller's workspace).
    """
    issues = Issues()
    values = read_object(body, field_prefix, FIELDS, issues) or {}

    def path(key: str) -> str:
        return join(field_prefix, key)

    out: dict[str, Any] = {}
    out["number_of_samples"] = _bounded(values, "number_of_samples", path, issues, 1, MAX_SAMPLES)
    if values.get("number_of_samples") is None:
        issues.add(path("number_of_samples"), f"is required (1–{MAX_SAMPLES})")
    out["spec_version"] = read_int(
        values.get("spec_version"), path("spec_version"), issues, minimum=1, maximum=MAX_VERSION
    )
    out["max_revision_cycles"] = _bounded(values, "max_revision_cycles", path, issues, 1, MAX_REVISION_CYCLES)
    out["max_examples_in_prompt"] = read_int(
        values.get("max_examples_in_prompt"), path("max_examples_in_prompt"), issues, minimum=1
    )
    out["seed"] = read_int(values.get("seed"), path("seed"), issues, minimum=0)
    out["max_output_tokens"] = read_int(
        values.get("max_output_tokens"), path("max_output_tokens"), issues, minimum=MIN_OUTPUT_TOKENS
    )
    out["novelty_threshold"] = read_number(
        values.get("novelty_threshold"),
        path("novelty_threshold"),
        issues,
        minimum=MIN_NOVELTY_THRESHOLD,
        maximum=1.0,
    )
    out["spec_id"] = read_str(values.get("spec_id"), path("spec_id"), issues)
    for key in (*_MODELS, "judge_model"):
        out[key] = _model(values.get(key), path(key), issues, allowed_models)
    _read_budgets(values, out, path, issues)
    flags = {k: read_bool(values.get(k), path(k), issues) for k in _FLAGS}
    out["unified_multifield"], out["skip_outline"] = flags["unified_multifield"], flags["skip_outline"]
    out["seed_shuffling_level"] = read_enum(
        values.get("seed_shuffling_level"), path("seed_shuffling_level"), issues, SeedShuffling
    )
    out["tools"] = _enum_list(values.get("tools"), path("tools"), issues, Tool)
    _read_types(values, flags["enable_revisions"], out, path, issues)
    out["databricks"] = _databricks(values, path, issues)
    if require_databricks_credentials:
        _require_databricks(values, out, path, issues)
    issues.raise_if_any()
    return GenerationRequest(**{k: v for k, v in out.items() if v is not None})


def _model(value: object, field: str, issues: Issues, allowed: Collection[str] | None) -> str | None:
    name = read_str(value, field, issues)
    if name is not None and allowed is not None and name not in allowed:
        issues.add(field, f"must be one of {', '.join(allowed)}; got {name!r}")
        return None
    return name


def _require_databricks(values: Mapping[str, object], out: dict[str, Any], path: Any, issues: Issues) -> None:
    """A ``databricks/`` model is served from the caller's workspace: its credentials must come along."""
    users = [key for key in _MODELS if str(out.get(key) or "").startswith(DATABRICKS_PREFIX)]
    if not users:
        return
    for key in _DATABRICKS:
        if values.get(key) is None:
            issues.add(path(key), f"is required when {users[0]} is a databricks/ model")
    base = values.get("databricks_api_base")
    if isinstance(base, str) and base.strip() and not base.startswith(("https://", "http://")):
        issues.add(path("databricks_api_base"), f"must be an http(s) URL, got {base!r}")


def _bounded(
    values: Mapping[str, object], key: str, path: Any, issues: Issues, low: int, high: int
) -> int | None:
    number = read_int(values.get(key), path(key), issues, minimum=low)
    if number is not None and number > high:
        issues.add(path(key), f"must be between {low} and {high}, got {number}")
        return None
    return number


def _enum_list(value: object, field: str, issues: Issues, enum: Any) -> tuple[Any, ...] | None:
    items = read_list(value, field, issues)
    if items is None:
        return None
    found = [read_enum(item, join(field, i), issues, enum) for i, item in enumerate(items)]
    if any(f is None for f in found):
        return None
    return tuple(dict.fromkeys(found))  # repeated types run once


def _read_types(
    values: Mapping[str, object], enable: bool | None, out: dict[str, Any], path: Any, issues: Issues
) -> None:
    revisions = _enum_list(values.get("revision_types"), path("revision_types"), issues, RevisionType)
    filters = _enum_list(values.get("filtering_types"), path("filtering_types"), issues, FilteringType)
    given = values.get("revision_types") is not None or values.get("filtering_types") is not None
    if enable and not given:  # the deprecated switch: every revision type plus structural filtering
        revisions, filters = tuple(RevisionType), (FilteringType.STRUCTURAL,)
    out["revision_types"], out["filtering_types"] = revisions, filters


def _read_budgets(values: Mapping[str, object], out: dict[str, Any], path: Any, issues: Issues) -> None:
    for key, model_key in _BUDGETS.items():
        budget = read_int(values.get(key), path(key), issues, minimum=MIN_THINKING_BUDGET)
        model = out.get(model_key)
        if budget is not None and not (isinstance(model, str) and model.endswith("-thinking")):
            issues.add(path(key), f"applies only to a `-thinking` {model_key}; got {model!r}")
            budget = None
        out[key] = budget


def _databricks(
    values: Mapping[str, object], path: Any, issues: Issues
) -> tuple[tuple[str, str], ...] | None:
    """The Databricks credentials when sent (the contract makes them optional); kept out of every echo."""
    found = {k: read_str(values.get(k), path(k), issues) for k in _DATABRICKS}
    return tuple((k, v) for k, v in found.items() if v is not None) or None
