"""Generation specs: YAML validation with YAML paths, round-trips, and seeded sampling (chi-square checks)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from datamill.core.errors import ValidationError
from datamill.core.spec import parse_spec_yaml, sample_properties, with_metadata

#: Upper 0.1% points of the chi-square distribution by degrees of freedom (standard tables).
CHI2_CRITICAL_0_001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467}

SPEC_YAML = """
spec:
  description: Customer support conversations
  requirements:
    - One conversation per sample
    - The agent is polite
  data_property_variations:
    - property_name: Sentiment
      property_description: Customer's tone
      property_values: [positive, neutral, negative]
      base_distributions: {positive: 50, neutral: 30, negative: 20}
      conditional_distributions:
        Channel:
          email: {positive: 10, neutral: 30, negative: 60}
    - property_name: Channel
      property_values: [email, chat]
      base_distributions: {email: 0.25, chat: 0.75}
    - property_name: Length
      property_values: [short, long]
metadata:
  dataset_id: abc
"""


def _chi2(counts: Counter[str], expected: dict[str, float]) -> float:
    total = sum(counts.values())
    return sum((counts[v] - p * total) ** 2 / (p * total) for v, p in expected.items() if p > 0)


def _errors(text: str) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_spec_yaml(text)
    return {i.field: i.reason for i in info.value.issues}


def test_parses_axes_normalises_distributions_and_keeps_metadata():
    spec = parse_spec_yaml(SPEC_YAML)
    assert spec.requirements == ("One conversation per sample", "The agent is polite")
    assert spec.axis("Sentiment").base == pytest.approx({"positive": 0.5, "neutral": 0.3, "negative": 0.2})
    assert spec.axis("Channel").base == {"email": 0.25, "chat": 0.75}
    assert spec.axis("Length").base == {"short": 0.5, "long": 0.5}  # absent means uniform
    assert spec.axis("Sentiment").parent == "Channel"
    assert spec.metadata == {"dataset_id": "abc"}


def test_yaml_round_trips_unchanged():
    spec = parse_spec_yaml(SPEC_YAML)
    again = parse_spec_yaml(spec.to_yaml())
    assert again == spec
    assert "base_distributions:\n    - " not in spec.to_yaml()
    assert again.to_dict()["spec"]["data_property_variations"][1]["base_distributions"] == {
        "email": 25,
        "chat": 75,
    }


def test_user_metadata_is_replaced_by_the_server_owned_one():
    edited = SPEC_YAML.replace("dataset_id: abc", "dataset_id: forged")
    text = with_metadata(edited, {"dataset_id": "abc", "version": 2})
    assert parse_spec_yaml(text).metadata == {"dataset_id": "abc", "version": 2}


def test_an_edit_keeps_the_users_text_and_only_swaps_the_metadata():
    commented = "# house style\n" + SPEC_YAML.replace(
        "    - property_name: Length", "    # short answers dominate\n    - property_name: Length"
    )
    assert with_metadata(commented, {"dataset_id": "abc"}) == commented  # unchanged metadata: as written
    forged = commented.replace("dataset_id: abc", "dataset_id: forged  # mine")
    text = with_metadata(forged, {"dataset_id": "abc", "version": 2})
    assert text.startswith(commented[: commented.index("metadata:")])  # comments and key order kept
    assert "forged" not in text
    assert parse_spec_yaml(text).metadata == {"dataset_id": "abc", "version": 2}
    no_metadata = commented[: commented.index("metadata:")]
    assert with_metadata(no_metadata, {}) == no_metadata
    flow = "{spec: {description: d, requirements: [r]}, metadata: {dataset_id: forged}}"
    assert parse_spec_yaml(with_metadata(flow, {"dataset_id": "abc"})).metadata == {"dataset_id": "abc"}


def test_requirements_block_string_is_split_into_items():
    spec = parse_spec_yaml("spec:\n  description: d\n  requirements: |\n    - one\n    - two\n")
    assert spec.requirements == ("one", "two")


def test_errors_name_the_yaml_path():
    bad = SPEC_YAML.replace("negative: 20}", "negative: 40}").replace("chat: 0.75", "chat: 0.5, fax: 1")
    errors = _errors(bad)
    assert "got 120" in errors["spec.data_property_variations[0].base_distributions"]
    assert "not one of" in errors["spec.data_property_variations[1].base_distributions.fax"]


def test_rounded_percentages_are_accepted_within_the_tolerance():
    base = "{positive: 50, neutral: 30, negative: 20}"
    spec = parse_spec_yaml(SPEC_YAML.replace(base, "{positive: 33, neutral: 33, negative: 33}"))
    assert spec.axis("Sentiment").base["neutral"] == pytest.approx(1 / 3)
    errors = _errors(SPEC_YAML.replace(base, "{positive: 30, neutral: 30, negative: 30}"))
    assert "got 90" in errors["spec.data_property_variations[0].base_distributions"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("spec: {requirements: []}", "spec.description"),
        ("metadata: {}", "spec"),
        ("spec: {description: d, colour: red}", "spec.colour"),
        ("spec: {description: d, data_property_variations: [{property_name: A}]}", "property_values"),
        (
            "spec: {description: d, data_property_variations: [{property_name: A, property_values: [x, x]}]}",
            "spec.data_property_variations[0].property_values",
        ),
        (
            "spec: {description: d, data_property_variations: ["
            "{property_name: A, property_values: [x]}, {property_name: A, property_values: [y]}]}",
            "spec.data_property_variations[1].property_name",
        ),
        ("spec: [unclosed", "content_yaml"),
        ("", "content_yaml"),
    ],
)
def test_bad_specs_name_the_field(text: str, field: str):
    errors = _errors(text)
    assert any(f == field or f.endswith(field) for f in errors), errors


def test_conditionals_must_name_another_axis_and_its_values():
    bad = SPEC_YAML.replace("        Channel:\n          email:", "        Channel:\n          fax:")
    assert "Channel.fax" in " ".join(_errors(bad))
    missing = SPEC_YAML.replace("        Channel:\n", "        Colour:\n")
    assert any("conditional_distributions" in f for f in _errors(missing))


def test_conditional_cycles_are_rejected():
    text = """
spec:
  description: d
  data_property_variations:
    - property_name: A
      property_values: [x, y]
      conditional_distributions: {B: {u: {x: 100}}}
    - property_name: B
      property_values: [u, v]
      conditional_distributions: {A: {x: {u: 100}}}
"""
    assert "cycle" in " ".join(_errors(text).values())


def test_sampled_frequencies_match_the_distributions():
    spec = parse_spec_yaml(SPEC_YAML)
    rng = random.Random(1234)
    draws = [sample_properties(spec, rng) for _ in range(6000)]
    channel = Counter(d["Channel"] for d in draws)
    assert _chi2(channel, spec.axis("Channel").base) < CHI2_CRITICAL_0_001[1]
    length = Counter(d["Length"] for d in draws)
    assert _chi2(length, spec.axis("Length").base) < CHI2_CRITICAL_0_001[1]
    sentiment = spec.axis("Sentiment")
    given_email = Counter(d["Sentiment"] for d in draws if d["Channel"] == "email")
    given_chat = Counter(d["Sentiment"] for d in draws if d["Channel"] == "chat")
    assert _chi2(given_email, sentiment.conditional["email"]) < CHI2_CRITICAL_0_001[2]
    assert _chi2(given_chat, sentiment.base) < CHI2_CRITICAL_0_001[2]
    # The statistic has power: chat draws do not fit the email mix, nor email draws the base mix.
    assert _chi2(given_chat, sentiment.conditional["email"]) > CHI2_CRITICAL_0_001[2]
    assert _chi2(given_email, sentiment.base) > CHI2_CRITICAL_0_001[2]


def test_sampling_is_reproducible_with_a_seed_and_never_draws_zero_probability_values():
    spec = parse_spec_yaml(SPEC_YAML.replace("{positive: 50, neutral: 30, negative: 20}", "{positive: 100}"))
    a = [sample_properties(spec, random.Random(7)) for _ in range(3)]
    b = [sample_properties(spec, random.Random(7)) for _ in range(3)]
    assert a == b
    draws = [sample_properties(spec, random.Random(i)) for i in range(200)]
    assert {d["Sentiment"] for d in draws if d["Channel"] == "chat"} == {"positive"}
