"""The calculator tool: the arithmetic sandbox, and wrong numbers fixed during a run on the fake model."""

from __future__ import annotations

import json

import pytest

from datamill.core.generation_request import parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import GenerationModels, GenerationRun
from datamill.steps.generation.calculator import CalculatorError, evaluate, matches


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("3 * 12", 36),
        ("36 * 0.9", 32.4),
        ("-(2 + 3) ** 2", -25),
        ("round(10 / 3, 2)", 3.33),
        ("max(1, 7) % 4", 3),
    ],
)
def test_arithmetic_is_computed(expression: str, value: float):
    assert evaluate(expression) == pytest.approx(value)


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('/etc/passwd').read()",
        "(1).__class__",
        "x + 1",
        "[1, 2]",
        "2 ** 100000",
        "10 ** 300 * 10 ** 300 * 10 ** 300 * 10 ** 300 * 10 ** 300",
        "1 / 0",
        "1e308 * 10",
        "'a' * 3",
        "+".join(["1"] * 300),
        "round(1.5, ndigits=1)",
    ],
)
def test_the_sandbox_refuses_anything_but_bounded_arithmetic(expression: str):
    with pytest.raises(CalculatorError):
        evaluate(expression)


def test_stated_values_are_compared_leniently():
    assert matches("$1,234.00", 1234)
    assert matches("32.40", 32.4)
    assert not matches("35", 36)
    assert not matches("many", 36)


async def test_a_run_with_the_calculator_fixes_wrong_numbers():
    spec = parse_spec_yaml("spec:\n  description: A shopping receipt\n")

    def responder(route: Route, request: ChatRequest) -> str:
        last = request.messages[-1].content
        if request.json_schema is not None:  # the calculator lists the sample's arithmetic
            stated = "35" if "come to $35" in last else "36"
            return json.dumps({"calculations": [{"expression": "3 * 12", "stated": stated}]})
        if "Correct these calculations" in request.messages[0].content:
            assert "3 * 12 = 36 (the sample says 35)" in request.messages[0].content
            return "3 shirts at $12 come to $36."
        return "3 shirts at $12 come to $35."

    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    body = {
        "number_of_samples": 2,
        "generation_model": "fake/g",
        "skip_outline": True,
        "tools": ["calculator"],
        "novelty_threshold": 1,  # both samples are the one scripted text
    }
    request = parse_generation_request(body)
    run = GenerationRun(spec, request, GenerationModels.resolve(gateway, request), gateway=gateway)
    result = await run.run()
    assert [s.text for s in result.samples] == ["3 shirts at $12 come to $36."] * 2
    assert result.summary.usage["by_tag"]["gen_calculator"]["requests"] == 2 * 2
