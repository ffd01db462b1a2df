"""The run/adapt request body (Adaption API), and the shape of the `datamill.core` package."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import datamill.core
from datamill.core import (
    AdaptRequest,
    BrandControls,
    ColumnMapping,
    ExpansionType,
    JobSpecification,
    LanguageExpansion,
    Length,
    Recipes,
    RecipeSpecification,
    TrainingType,
    parse_adapt_request,
)
from datamill.core.errors import ValidationError
from datamill.core.run_config import parse_run_config

#: The body the real SDK sent for `client.datasets.run(...)` (as the SDK sends it).
SDK_RUN_BODY: dict[str, Any] = {
    "column_mapping": {"prompt": "question", "completion": "answer"},
    "recipe_specification": {"recipes": {"deduplication": True}},
    "job_specification": {"max_rows": 10, "idempotency_key": "job-1"},
    "brand_controls": {"length": "concise"},
    "training_type": "instruction_dataset",
    "language_expansion": None,
}


def issues(body: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_adapt_request(body)
    return {i.field: i.reason for i in caught.value.issues}


def assert_issue(found: dict[str, str], field: str, *words: str) -> None:
    assert field in found, f"no issue on {field}: {found}"
    for word in words:
        assert word in found[field], f"{word!r} not in {found[field]!r}"


def body(**changes: Any) -> dict[str, Any]:
    return {"column_mapping": {"prompt": "q", "completion": "a"}, **changes}


# --- happy paths --------------------------------------------------------------------------------------------


def test_the_body_the_sdk_sends() -> None:
    request = parse_adapt_request(SDK_RUN_BODY)
    assert request.column_mapping == ColumnMapping(prompt="question", completion="answer")
    only_dedup = Recipes(deduplication=True, prompt_rephrase=False, prompt_metadata_injection=False)
    assert request.recipe_specification == RecipeSpecification(None, only_dedup)
    assert request.job == JobSpecification(10, "job-1")
    assert request.brand_controls == BrandControls(length=Length.CONCISE)
    assert request.training_type is TrainingType.INSTRUCTION_DATASET
    assert request.estimate is False
    assert (request.language_expansion, request.language_expansion_given) == (None, True)


def test_the_estimate_body_the_sdk_sends_needs_no_mapping() -> None:
    request = parse_adapt_request({"estimate": True})
    assert request.estimate is True
    assert request.column_mapping is None
    assert request == AdaptRequest(estimate=True)


def test_defaults_for_omitted_objects() -> None:
    request = parse_adapt_request(body())
    assert request.recipe_specification == RecipeSpecification()
    assert request.job == JobSpecification()
    assert request.brand_controls == BrandControls()
    assert request.training_type is TrainingType.INSTRUCTION_DATASET
    assert request.estimate is False


def test_null_objects_take_defaults_too() -> None:
    request = parse_adapt_request(
        body(
            recipe_specification=None,
            job_specification=None,
            brand_controls=None,
            training_type=None,
            estimate=None,
        )
    )
    assert request == parse_adapt_request(body())


def test_preference_pairs() -> None:
    assert (
        parse_adapt_request(body(training_type="preference_pairs")).training_type
        is TrainingType.PREFERENCE_PAIRS
    )


def test_estimate_may_still_carry_a_mapping_which_is_then_validated() -> None:
    assert parse_adapt_request(body(estimate=True)).column_mapping == ColumnMapping(
        prompt="q", completion="a"
    )
    assert_issue(issues({"estimate": True, "column_mapping": {}}), "column_mapping", "mode")


# --- the three states of language_expansion -----------------------------------------------------------------


def test_language_expansion_omitted_keeps_the_existing_config() -> None:
    request = parse_adapt_request(body())
    assert (request.language_expansion, request.language_expansion_given) == (None, False)
    assert "language_expansion" not in request.to_dict()


def test_language_expansion_null_clears_it() -> None:
    request = parse_adapt_request(body(language_expansion=None))
    assert (request.language_expansion, request.language_expansion_given) == (None, True)
    assert request.to_dict()["language_expansion"] is None


def test_language_expansion_object_replaces_it() -> None:
    request = parse_adapt_request(
        body(language_expansion={"type": "translate", "languages": ["ES"], "sample_rate": 0.5})
    )
    assert request.language_expansion == LanguageExpansion(
        type=ExpansionType.TRANSLATE, languages=("es",), sample_rate=0.5
    )
    assert request.language_expansion_given is True


def test_an_expansion_object_is_always_given() -> None:
    expansion = LanguageExpansion(type=ExpansionType.TRANSLATE, languages=("es",), sample_rate=0.5)
    assert AdaptRequest(language_expansion=expansion).language_expansion_given is True


# --- rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({}, "column_mapping", ("required", "estimate")),
        ({"estimate": False}, "column_mapping", ("required",)),
        ({"column_mapping": None}, "column_mapping", ("required",)),
        (
            body(mapping={}),
            "mapping",
            ("unknown", "column_mapping", "recipe_specification", "language_expansion"),
        ),
        (body(estimate="true"), "estimate", ("boolean", "string")),
        (body(estimate=1), "estimate", ("boolean",)),
        (body(training_type="sft"), "training_type", ("instruction_dataset", "preference_pairs")),
        (body(column_mapping={"chat": "m", "prompt": "q"}), "column_mapping.prompt", ("chat mode",)),
        (body(column_mapping={"chat": "m", "completion": "a"}), "column_mapping.completion", ("chat mode",)),
        (body(job_specification={"max_rows": 0}), "job_specification.max_rows", ("at least 1",)),
        (body(job_specification={"max_rows": 10.5}), "job_specification.max_rows", ("whole",)),
        (body(brand_controls={"length": "long"}), "brand_controls.length", ("concise",)),
        (
            body(recipe_specification={"recipes": {"dedup": True}}),
            "recipe_specification.recipes.dedup",
            ("unknown",),
        ),
        (
            body(
                language_expansion={
                    "type": "localize",
                    "pairs": [{"country": "MX"}, {"country": "XX", "language": "es"}],
                    "sample_rate": 0.5,
                }
            ),
            "language_expansion.pairs[1].country",
            ("unknown country",),
        ),
        (
            body(language_expansion={"type": "translate", "languages": ["es"]}),
            "language_expansion.sample_rate",
            ("required",),
        ),
        (body(language_expansion="es"), "language_expansion", ("object",)),
        ([body()], "body", ("object",)),
    ],
)
def test_rules(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value), field, *words)


def test_a_bad_estimate_does_not_also_demand_a_mapping() -> None:
    assert set(issues({"estimate": "yes"})) == {"estimate"}


def test_every_issue_in_every_object_is_reported_at_once() -> None:
    bad = {
        "column_mapping": {"chat": "m", "completion": "a"},
        "recipe_specification": {"recipes": {"deduplication": "no"}},
        "job_specification": {"max_rows": 10.5, "idempotency_key": ""},
        "brand_controls": {"length": "huge", "safety_categories": ["gore"]},
        "training_type": "dpo",
        "estimate": 0,
        "language_expansion": {"type": "translate", "languages": ["xx"], "sample_rate": 3},
        "extra": True,
    }
    assert set(issues(bad)) == {
        "column_mapping.completion",
        "recipe_specification.recipes.deduplication",
        "job_specification.max_rows",
        "job_specification.idempotency_key",
        "brand_controls.length",
        "brand_controls.safety_categories[0]",
        "training_type",
        "estimate",
        "language_expansion.languages[0]",
        "language_expansion.sample_rate",
        "extra",
    }


def test_validation_error_serialises_for_the_wire() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_adapt_request(body(column_mapping={"chat": "m", "prompt": "q"}))
    payload = json.loads(json.dumps(caught.value.to_dict()))
    assert payload["errors"][0]["field"] == "column_mapping.prompt"
    assert "chat mode" in payload["message"]


# --- round trips --------------------------------------------------------------------------------------------

ROUND_TRIP_BODIES = [
    SDK_RUN_BODY,
    {"estimate": True},
    body(),
    body(language_expansion=None),
    {
        "column_mapping": {"universal_prompt": "Describe it.", "context": ["text"], "image": "img"},
        "recipe_specification": {
            "version": "2",
            "recipes": {"reasoning_traces": True, "prompt_rephrase": False},
        },
        "job_specification": {"max_rows": 500.0},
        "brand_controls": {
            "length": "extensive",
            "safety_categories": ["hate", "sexual"],
            "hallucination_mitigation": True,
            "blueprint": "Be brief and warm.",
        },
        "training_type": "preference_pairs",
        "estimate": False,
        "language_expansion": {
            "type": "localize",
            "pairs": [{"country": "mx", "language": "ES"}],
            "sample_rate": 0.2,
        },
    },
    {
        "column_mapping": {"chat": "messages", "image": "img"},
        "language_expansion": {"type": "translate", "languages": ["zh", "fil"], "sample_rate": 1},
    },
]


@pytest.mark.parametrize("value", ROUND_TRIP_BODIES)
def test_round_trip(value: dict[str, Any]) -> None:
    request = parse_adapt_request(value)
    wire = request.to_dict()
    assert json.loads(json.dumps(wire)) == wire  # the wire shape is plain JSON
    assert parse_adapt_request(wire) == request


def test_round_trip_of_a_request_built_in_python() -> None:
    request = AdaptRequest(
        column_mapping=ColumnMapping(prompt="q", context=("doc",)),
        brand_controls=BrandControls(length=Length.MINIMAL),
        job=JobSpecification(max_rows=3),
    )
    assert parse_adapt_request(request.to_dict()) == request


# --- the package ---------------------------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    names = datamill.core.__all__
    assert names == sorted(names)
    assert all(hasattr(datamill.core, name) for name in names)


def test_core_imports_only_the_standard_library_and_reads_no_data_at_import() -> None:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import datamill.core, datamill.core.languages as lang\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "outside = sorted(new - set(sys.stdlib_module_names) - {'datamill'})\n"
        "print(json.dumps([outside, lang._load.cache_info().currsize]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    outside, loaded = json.loads(result.stdout)
    assert outside == []
    assert loaded == 0


def test_a_run_names_its_model_and_judge() -> None:
    request = parse_adapt_request(body(model="sim-anthropic/claude", judge_model="sim-gemini/flash"))
    assert (request.model, request.judge_model) == ("sim-anthropic/claude", "sim-gemini/flash")
    assert parse_adapt_request(request.to_dict()) == request
    plain = parse_adapt_request(body())
    assert plain.model is None
    assert "model" not in plain.to_dict()
    assert "judge_model" not in plain.to_dict()
    found = issues(body(model="  ", judge_model=3))
    assert_issue(found, "model", "empty")
    assert_issue(found, "judge_model", "string")


def test_a_run_configs_model_is_the_commands_not_the_body() -> None:
    # The command line's --model and --judge-model override a config's; the body never carries them.
    config = parse_run_config(
        {"model": "fake/a", "judge_model": "fake/b", "training_type": "instruction_dataset"}
    )
    assert config.io["model"] == "fake/a"
    assert config.options.judge_model == "fake/b"
    assert config.body == {"training_type": "instruction_dataset"}
