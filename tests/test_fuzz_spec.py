"""Property-based fuzzing of the spec YAML parser: whatever the text, only a ValidationError comes out."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamill.core.errors import ValidationError
from datamill.core.spec import Spec, parse_spec_yaml

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = """spec:
  description: support answers
  requirements: [answer the question]
  data_property_variations:
    - property_name: tone
      property_values: [calm, brisk]
      base_distribution: {calm: 0.5, brisk: 0.5}
"""

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["spec", "description", "requirements", "data_property_variations", "property_name"]),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12) | _SCALARS, inner, max_size=5)
    ),
    max_leaves=30,
)
_SPEC_KEYS = st.sampled_from(
    ["property_name", "property_values", "base_distribution", "conditional_distributions", "description"]
)


def parses_or_refuses(text: str) -> None:
    issues = []
    try:
        assert isinstance(parse_spec_yaml(text), Spec)
    except ValidationError as exc:
        issues = exc.issues
        assert issues
    assert all(issue.reason for issue in issues)


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    parses_or_refuses(text)


@FUZZ
@given(_DOCS)
def test_any_yaml_document(doc: object) -> None:
    parses_or_refuses(yaml.safe_dump({"spec": doc}))
    parses_or_refuses(yaml.safe_dump(doc))


@FUZZ
@given(st.lists(st.dictionaries(_SPEC_KEYS, _DOCS, max_size=4), max_size=4), _DOCS)
def test_spec_shaped_documents(axes: list[dict[str, object]], requirements: object) -> None:
    doc = {"spec": {"description": "d", "requirements": requirements, "data_property_variations": axes}}
    parses_or_refuses(yaml.safe_dump(doc))


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID)), st.text(max_size=30))
def test_a_valid_spec_with_text_spliced_in(at: int, insert: str) -> None:
    parses_or_refuses(VALID[:at] + insert + VALID[at:])


def test_known_hostile_yaml_is_refused_not_crashing() -> None:
    laughs = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    for text in (
        "spec: " + "[" * 10_000 + "]" * 10_000,
        "spec: " + "{a: " * 5_000 + "1" + "}" * 5_000,
        VALID.replace("0.5, brisk: 0.5", "1" + "0" * 5_000 + ", brisk: 1"),
        "spec: &a\n  description: *a\n",
        "l0: &l0 [x]\n" + laughs + "spec:\n  requirements: *l8\n",
        "!!python/object/apply:os.system ['echo hacked']",
    ):
        with pytest.raises(ValidationError):
            parse_spec_yaml(text)
