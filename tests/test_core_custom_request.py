"""The run request's ``custom_steps`` and ``prompt_templates``: any JSON value either parses and checks or is
refused with a `ValidationError` naming a field (never another exception), and a valid request survives
``to_dict`` and parsing again, as a stored run's request must."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.services.adaptation.launch import check_own_steps

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_STEP = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["topic", "t2", "_x", "", "completion"]),
        "output": st.sampled_from(["o", "", "_o"]),
    },
    optional={
        "template": st.sampled_from(["{{ original_prompt }}", "{{ x.__class__ }}", "{% if %}", "plain", ""])
        | _JSON,
        "schema": st.sampled_from([{"type": "object"}, {"type": "objekt"}, {"enum": 3}]) | _JSON,
        "after": st.sampled_from(["completion", "topic", "nowhere"]) | _JSON,
        "model": _JSON,
        "system": _JSON,
        "max_tokens": _JSON,
        "temperature": _JSON,
        "expected_output_tokens": _JSON,
        "other": _JSON,
    },
)
_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "tool"]) | _JSON},
    optional={"content": st.sampled_from(["{{ prompt }}", "{{ prompt.__globals__ }}", "{% for %}"]) | _JSON},
)
_TEMPLATES = st.dictionaries(
    st.sampled_from(["completion", "rephrase", "completon"]),
    st.fixed_dictionaries({"messages": st.lists(_MESSAGE, max_size=3) | _JSON}, optional={"version": _JSON}),
    max_size=2,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(_STEP, max_size=3) | _JSON, templates=_TEMPLATES | _JSON)
def test_any_value_is_checked_or_refused_naming_a_field(steps: Any, templates: Any) -> None:
    body = {"estimate": True, "custom_steps": steps, "prompt_templates": templates}
    refused: ValidationError | None = None
    try:
        request = parse_adapt_request(body)
        check_own_steps(request)
    except ValidationError as exc:
        refused = exc
    if refused is not None:
        fields = [issue.field for issue in refused.issues]
        assert all(f.startswith(("custom_steps", "prompt_templates")) for f in fields), refused
    else:
        assert parse_adapt_request(request.to_dict()) == request


def test_a_request_without_them_keeps_its_wire_form() -> None:
    body = {"column_mapping": {"prompt": "q", "completion": "a"}}
    assert "custom_steps" not in parse_adapt_request(body).to_dict()
    assert "prompt_templates" not in parse_adapt_request(body).to_dict()


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    step = {"name": "t", "output": "o", "template": "x", "schema": schema}
    return {"estimate": True, "custom_steps": [step]}


def test_a_schema_nested_too_deep_is_refused_not_recursed_into() -> None:
    check_own_steps(parse_adapt_request(_nested(8)))
    for depth in (100, 5_000):
        with pytest.raises(ValidationError) as caught:
            parse_adapt_request(_nested(depth))
        assert [(i.field, i.reason) for i in caught.value.issues] == [
            ("custom_steps[0].schema", "is nested deeper than 32 levels")
        ]
