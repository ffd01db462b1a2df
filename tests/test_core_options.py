"""Brand controls, recipes and the job specification, and the type rules every reader shares."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from datamill.core import (
    BrandControls,
    JobSpecification,
    Length,
    Recipes,
    RecipeSpecification,
    SafetyCategory,
    parse_brand_controls,
    parse_job_specification,
    parse_recipe_specification,
)
from datamill.core.brand import MAX_BLUEPRINT_CHARS
from datamill.core.errors import ValidationError
from datamill.core.fields import Issues, read_bool, read_int, read_number
from datamill.core.job import MAX_IDEMPOTENCY_KEY_CHARS
from datamill.core.recipes import RECIPE_NAMES


def issues(value: Any, parse: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse(value)
    return {i.field: i.reason for i in caught.value.issues}


def assert_issue(found: dict[str, str], field: str, *words: str) -> None:
    assert field in found, f"no issue on {field}: {found}"
    for word in words:
        assert word in found[field], f"{word!r} not in {found[field]!r}"


# --- shared type rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(10, 10), (10.0, 10), (0, 0), (-3.0, -3)])
def test_int_accepts_whole_numbers_including_whole_floats(value: float, expected: int) -> None:
    result = read_int(value, "n", Issues())
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "words"),
    [(10.5, "whole"), (True, "boolean"), ("10", "string"), (float("inf"), "whole"), ([1], "array")],
)
def test_int_refuses_fractions_booleans_and_strings(value: object, words: str) -> None:
    found = Issues()
    assert read_int(value, "n", found) is None
    assert [(i.field, words in i.reason) for i in found] == [("n", True)]


@pytest.mark.parametrize("value", [True, False, "1", float("nan"), None])
def test_number_refuses_booleans_strings_and_nan(value: object) -> None:
    found = Issues()
    assert read_number(value, "x", found) is None
    assert len(found) == (0 if value is None else 1)


@pytest.mark.parametrize("value", ["true", 1, 0, "false"])
def test_bool_refuses_strings_and_numbers(value: object) -> None:
    found = Issues()
    assert read_bool(value, "b", found) is None
    assert "boolean" in next(iter(found)).reason


# --- brand controls -----------------------------------------------------------------------------------------


def test_brand_controls_happy_path_and_round_trip() -> None:
    value = {
        "length": "detailed",
        "safety_categories": ["violence", "self_harm"],
        "hallucination_mitigation": True,
        "blueprint": "Friendly, plain English.",
    }
    brand = parse_brand_controls(value)
    assert brand == BrandControls(
        Length.DETAILED, (SafetyCategory.VIOLENCE, SafetyCategory.SELF_HARM), True, "Friendly, plain English."
    )
    assert brand.safety_review
    assert parse_brand_controls(brand.to_dict()) == brand


def test_brand_controls_defaults() -> None:
    brand = parse_brand_controls({})
    assert brand == BrandControls()
    assert (brand.length, brand.safety_categories, brand.hallucination_mitigation, brand.blueprint) == (
        None,
        (),
        False,
        None,
    )
    assert not brand.safety_review
    assert parse_brand_controls(None) == BrandControls()


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (Length.MINIMAL, (1, 40)),
        (Length.CONCISE, (40, 150)),
        (Length.DETAILED, (150, 400)),
        (Length.EXTENSIVE, (400, 1200)),
    ],
)
def test_length_token_ranges(length: Length, expected: tuple[int, int]) -> None:
    assert length.token_range == expected


def test_length_token_ranges_grow_and_touch() -> None:
    ranges = [length.token_range for length in Length]
    assert all(low < high for low, high in ranges)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


def test_safety_categories_are_the_contract_five() -> None:
    assert [c.value for c in SafetyCategory] == ["violence", "self_harm", "harassment", "hate", "sexual"]


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        (
            {"length": "long"},
            "brand_controls.length",
            ("minimal", "concise", "detailed", "extensive", "'long'"),
        ),
        ({"length": 3}, "brand_controls.length", ("minimal",)),
        ({"safety_categories": ["gore"]}, "brand_controls.safety_categories[0]", ("violence", "'gore'")),
        ({"safety_categories": ["hate", "hate"]}, "brand_controls.safety_categories[1]", ("twice",)),
        ({"safety_categories": "hate"}, "brand_controls.safety_categories", ("array",)),
        ({"safety_categories": [None]}, "brand_controls.safety_categories[0]", ("null",)),
        (
            {"hallucination_mitigation": "true"},
            "brand_controls.hallucination_mitigation",
            ("boolean", "string"),
        ),
        (
            {"blueprint": "x" * (MAX_BLUEPRINT_CHARS + 1)},
            "brand_controls.blueprint",
            (str(MAX_BLUEPRINT_CHARS), "maximum"),
        ),
        ({"blueprint": ""}, "brand_controls.blueprint", ("empty",)),
        ({"blueprint": 5}, "brand_controls.blueprint", ("string",)),
        ({"tone": "warm"}, "brand_controls.tone", ("unknown", "length", "blueprint")),
        ([], "brand_controls", ("object",)),
    ],
)
def test_brand_rules(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value, parse_brand_controls), field, *words)


def test_blueprint_at_the_limit_is_accepted() -> None:
    assert (
        parse_brand_controls({"blueprint": "x" * MAX_BLUEPRINT_CHARS}).blueprint == "x" * MAX_BLUEPRINT_CHARS
    )


# --- recipes ------------------------------------------------------------------------------------------------


def test_recipe_defaults_are_documented_values() -> None:
    assert Recipes() == Recipes(
        deduplication=True, prompt_rephrase=True, reasoning_traces=False, prompt_metadata_injection=True
    )


@pytest.mark.parametrize("value", [None, {}, {"recipes": {}}, {"recipes": None}])
def test_omitted_recipes_take_the_defaults(value: Any) -> None:
    assert parse_recipe_specification(value) == RecipeSpecification(None, Recipes())


def test_recipes_turned_on_are_the_selection() -> None:
    spec = parse_recipe_specification(
        {"version": "v2", "recipes": {"deduplication": False, "reasoning_traces": True}}
    )
    assert spec.version == "v2"
    assert spec.recipes == Recipes(
        deduplication=False, prompt_rephrase=False, reasoning_traces=True, prompt_metadata_injection=False
    )
    assert parse_recipe_specification(spec.to_dict()) == spec


def test_recipes_only_turned_off_keep_the_defaults_of_the_rest() -> None:
    spec = parse_recipe_specification({"recipes": {"deduplication": False}})
    assert spec.recipes == Recipes(
        deduplication=False, prompt_rephrase=True, reasoning_traces=False, prompt_metadata_injection=True
    )


@pytest.mark.parametrize(
    ("body", "flag"),
    [
        ({"prompt_rephrase": True}, "rephrase"),
        ({"deduplication": True, "reasoning_traces": True}, "dedup,reasoning"),
        ({name: False for name in RECIPE_NAMES}, "none"),
    ],
)
def test_the_body_and_the_command_line_select_the_same_recipes(body: dict[str, bool], flag: str) -> None:
    from datamill.cli.adapt_body import parse_recipes

    from_body = parse_recipe_specification({"recipes": body}).recipes
    from_flag = parse_recipe_specification({"recipes": parse_recipes(flag)}).recipes
    assert from_body == from_flag
    assert from_body.to_dict() == parse_recipes(flag)


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"recipes": {"deduplication": "yes"}}, "recipe_specification.recipes.deduplication", ("boolean",)),
        ({"recipes": {"prompt_rephrase": 1}}, "recipe_specification.recipes.prompt_rephrase", ("boolean",)),
        (
            {"recipes": {"translation": True}},
            "recipe_specification.recipes.translation",
            ("unknown", "deduplication", "prompt_rephrase", "reasoning_traces", "prompt_metadata_injection"),
        ),
        ({"recipes": ["deduplication"]}, "recipe_specification.recipes", ("object",)),
        ({"version": 2}, "recipe_specification.version", ("string",)),
        ({"recipe": {}}, "recipe_specification.recipe", ("unknown", "recipes", "version")),
    ],
)
def test_recipe_rules(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value, parse_recipe_specification), field, *words)


# --- job specification --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"max_rows": 10, "idempotency_key": "job-1"}, JobSpecification(10, "job-1")),
        ({"max_rows": 10.0}, JobSpecification(10, None)),
        ({"max_rows": 1}, JobSpecification(1, None)),
        ({}, JobSpecification()),
        (None, JobSpecification()),
        ({"idempotency_key": "k" * MAX_IDEMPOTENCY_KEY_CHARS}, JobSpecification(None, "k" * 255)),
    ],
)
def test_job_specification(value: Any, expected: JobSpecification) -> None:
    job = parse_job_specification(value)
    assert job == expected
    assert parse_job_specification(job.to_dict()) == job


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"max_rows": 0}, "job_specification.max_rows", ("at least 1",)),
        ({"max_rows": -5}, "job_specification.max_rows", ("at least 1",)),
        ({"max_rows": 10.5}, "job_specification.max_rows", ("whole number",)),
        ({"max_rows": True}, "job_specification.max_rows", ("whole number", "boolean")),
        ({"max_rows": "10"}, "job_specification.max_rows", ("whole number", "string")),
        ({"idempotency_key": ""}, "job_specification.idempotency_key", ("empty",)),
        ({"idempotency_key": "k" * 256}, "job_specification.idempotency_key", ("255",)),
        ({"idempotency_key": 7}, "job_specification.idempotency_key", ("string",)),
        ({"rows": 7}, "job_specification.rows", ("unknown", "max_rows", "idempotency_key")),
    ],
)
def test_job_rules(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value, parse_job_specification), field, *words)
