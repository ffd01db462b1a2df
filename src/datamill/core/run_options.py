"""datamill's own run options: what an adaptation run can set beyond the Adaption wire request.

| option              | meaning                                                         | default |
|---------------------|-----------------------------------------------------------------|---------|
| seed                | seed of every random choice (max_rows sample, expansion, eval)  | 0       |
| batch_size          | rows per batch; each finished batch is checkpointed             | 256     |
| near_dedup          | MinHash-LSH near-duplicate removal, with the dedup recipe       | true    |
| semantic_dedup      | embedding-based duplicate removal, with the dedup recipe        | false   |
| rephrase_check      | revert rephrases whose meaning drifted (embedding similarity)   | true    |
| translation_judge   | the judge checks translations for changed details (numbers, ...) | false   |
| grounding_docs      | files or folders the local search index is built from          | []      |
| grounding_top_k     | passages retrieved per row when grounding                      | 3       |
| grounding_min_relevance | share of the query a passage must cover to be kept (0–1)    | 0.25    |
| grounding_text_column | field or column of the text in .jsonl/.csv documents          | text    |
| grounding_source_column | field or column naming a .jsonl/.csv record's source       | none    |
| grounding_index     | the index file; default: one per set of documents, in DATAMILL_HOME | none |
| grounding_search_url | a search API grounding asks instead of the local index (`HttpSearch`) | none |
| evaluate            | grade a sample before and after, and write the HTML report      | true    |
| eval_sample_size    | rows judged by the evaluation                                   | 50      |
| judge_model         | model for judges (pairs, safety, evaluation); default: a model | none    |
|                     | of another family from the routes' judge_models, else --model  |         |
| preference_mode     | how preference pairs are made: candidates, revision or flaw     | candidates |
| preference_candidates | answers ranked per row in candidates mode (completion incl.) | 3       |
| preference_models   | more models that each write one candidate answer                | []      |
| preference_min_margin | smallest judged margin (0–2) of chosen over rejected          | 1.0     |
| remove_unsafe_rows  | safety review removes rows violating a listed category          | true    |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from datamill.core.fields import (
    Issues,
    join,
    read_bool,
    read_int,
    read_number,
    read_str,
    read_str_list,
)

RUN_OPTION_FIELDS = (
    "seed",
    "batch_size",
    "near_dedup",
    "semantic_dedup",
    "rephrase_check",
    "translation_judge",
    "grounding_docs",
    "grounding_top_k",
    "grounding_min_relevance",
    "grounding_text_column",
    "grounding_source_column",
    "grounding_index",
    "grounding_search_url",
    "evaluate",
    "eval_sample_size",
    "judge_model",
    "remove_unsafe_rows",
    "preference_mode",
    "preference_candidates",
    "preference_models",
    "preference_min_margin",
)
PREFERENCE_MODES = ("candidates", "revision", "flaw")


@dataclass(frozen=True)
class RunOptions:
    seed: int = 0
    batch_size: int = 256
    near_dedup: bool = True
    semantic_dedup: bool = False
    rephrase_check: bool = True
    translation_judge: bool = False
    grounding_docs: tuple[str, ...] = field(default_factory=tuple)
    grounding_top_k: int = 3
    grounding_min_relevance: float = 0.25
    grounding_text_column: str = "text"
    grounding_source_column: str | None = None
    grounding_index: str | None = None
    grounding_search_url: str | None = None
    evaluate: bool = True
    eval_sample_size: int = 50
    judge_model: str | None = None
    remove_unsafe_rows: bool = True
    preference_mode: str = "candidates"
    preference_candidates: int = 3
    preference_models: tuple[str, ...] = field(default_factory=tuple)
    preference_min_margin: float = 1.0


def read_run_options(values: Mapping[str, object], field_prefix: str, issues: Issues) -> RunOptions:
    """Read the run options present in ``values`` (unknown keys are the caller's business)."""
    defaults = RunOptions()
    out: dict[str, object] = {}

    def path(key: str) -> str:
        return join(field_prefix, key)

    for key in ("seed",):
        if values.get(key) is not None:
            out[key] = read_int(values[key], path(key), issues, minimum=0)
    for key in ("batch_size", "grounding_top_k", "eval_sample_size"):
        if values.get(key) is not None:
            out[key] = read_int(values[key], path(key), issues, minimum=1)
    for key in (
        "near_dedup",
        "semantic_dedup",
        "rephrase_check",
        "translation_judge",
        "evaluate",
        "remove_unsafe_rows",
    ):
        if values.get(key) is not None:
            out[key] = read_bool(values[key], path(key), issues)
    if values.get("grounding_min_relevance") is not None:
        out["grounding_min_relevance"] = read_number(
            values["grounding_min_relevance"], path("grounding_min_relevance"), issues, minimum=0, maximum=1
        )
    if values.get("preference_candidates") is not None:
        out["preference_candidates"] = read_int(
            values["preference_candidates"], path("preference_candidates"), issues, minimum=2, maximum=8
        )
    if values.get("preference_min_margin") is not None:
        out["preference_min_margin"] = read_number(
            values["preference_min_margin"], path("preference_min_margin"), issues, minimum=0, maximum=2
        )
    if values.get("preference_mode") is not None:
        mode = read_str(values["preference_mode"], path("preference_mode"), issues)
        if mode is not None and mode not in PREFERENCE_MODES:
            issues.add(path("preference_mode"), f"must be one of {', '.join(PREFERENCE_MODES)}; got {mode!r}")
        else:
            out["preference_mode"] = mode
    if values.get("preference_models") is not None:
        out["preference_models"] = read_str_list(
            values["preference_models"], path("preference_models"), issues
        )
    if values.get("grounding_docs") is not None:
        out["grounding_docs"] = read_str_list(values["grounding_docs"], path("grounding_docs"), issues)
    for key in (
        "judge_model",
        "grounding_text_column",
        "grounding_source_column",
        "grounding_index",
        "grounding_search_url",
    ):
        if values.get(key) is not None:
            out[key] = read_str(values[key], path(key), issues)
    merged = {k: v for k, v in out.items() if v is not None}
    return replace(defaults, **merged)  # type: ignore[arg-type]
