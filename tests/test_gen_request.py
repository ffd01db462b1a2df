"""Generation run options: bounds, enums, thinking budgets and the deprecated enable_revisions switch."""

from __future__ import annotations

import pytest

from datamill.core.errors import ValidationError
from datamill.core.generation_request import (
    DEFAULT_REVISION_CYCLES,
    FilteringType,
    RevisionType,
    SeedShuffling,
    parse_generation_request,
)


def _fields(body: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_generation_request(body)
    return {i.field: i.reason for i in info.value.issues}


def test_defaults_and_runtime_params():
    request = parse_generation_request({"number_of_samples": 3})
    assert request.revision_types == ()
    assert request.filtering_types == ()
    assert request.seed_shuffling_level is SeedShuffling.NONE  # the same seeds first: a cacheable prefix
    params = request.runtime_params()
    assert params["max_revision_cycles"] is None
    assert params["revision_model"] is None
    assert params["number_of_samples"] == 3


def test_full_body_is_read():
    request = parse_generation_request(
        {
            "number_of_samples": 20000,
            "spec_version": 2,
            "generation_model": "anthropic/claude-sonnet-5-5-thinking",
            "generation_thinking_budget": 2048,
            "revision_model": "fake/judge",
            "revision_types": ["consistency", "conformance", "consistency"],
            "filtering_types": ["structural", "conformance"],
            "max_revision_cycles": 5,
            "seed_shuffling_level": "prompt",
            "max_examples_in_prompt": 4,
            "skip_outline": True,
            "tools": ["calculator"],
            "databricks_client_secret": "s3cret",
        }
    )
    assert request.revision_types == (RevisionType.CONSISTENCY, RevisionType.CONFORMANCE)
    assert request.filtering_types == (FilteringType.STRUCTURAL, FilteringType.CONFORMANCE)
    assert request.revision_cycles == 5
    assert "s3cret" not in str(request.runtime_params())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "number_of_samples"),
        ({"number_of_samples": 0}, "number_of_samples"),
        ({"number_of_samples": 20001}, "number_of_samples"),
        ({"number_of_samples": 1, "max_revision_cycles": 6}, "max_revision_cycles"),
        ({"number_of_samples": 1, "spec_version": 0}, "spec_version"),
        ({"number_of_samples": 1, "revision_types": ["grammar"]}, "revision_types[0]"),
        ({"number_of_samples": 1, "filtering_types": "structural"}, "filtering_types"),
        ({"number_of_samples": 1, "seed_shuffling_level": "all"}, "seed_shuffling_level"),
        ({"number_of_samples": 1, "tools": ["shell"]}, "tools[0]"),
        ({"number_of_samples": 1, "generation_thinking_budget": 4096}, "generation_thinking_budget"),
        (
            {"number_of_samples": 1, "outline_model": "x/y-thinking", "outline_thinking_budget": 100},
            "outline_thinking_budget",
        ),
        ({"number_of_samples": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_named(body: dict[str, object], field: str):
    assert field in _fields(body)


def test_enable_revisions_means_all_types_and_structural_unless_lists_given():
    legacy = parse_generation_request({"number_of_samples": 1, "enable_revisions": True})
    assert set(legacy.revision_types) == set(RevisionType)
    assert legacy.filtering_types == (FilteringType.STRUCTURAL,)
    assert legacy.revision_cycles == DEFAULT_REVISION_CYCLES
    explicit = parse_generation_request(
        {"number_of_samples": 1, "enable_revisions": True, "revision_types": ["consistency"]}
    )
    assert explicit.revision_types == (RevisionType.CONSISTENCY,)
    assert explicit.filtering_types == ()
