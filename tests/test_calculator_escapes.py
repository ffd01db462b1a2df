"""Known Python sandbox escapes and resource attacks against the calculator: each is refused, quickly."""

from __future__ import annotations

import pytest

from datamill.steps.generation.calculator import CalculatorError, evaluate

ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__.__mro__[1].__subclasses__()[0]",
    "__import__('os').system('id')",
    "__builtins__",
    "open('/etc/passwd').read()",
    "eval('1+1')",
    "(lambda: __import__('os'))()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "{x: 1 for x in range(3)}",
    "(x for x in (1,))",
    "abs.__self__.__import__('os')",
    "max.__call__(1)",
    "round.__globals__",
    "(1).__class__",
    "1 .real",
    "f'{__import__(\"os\")}'",
    "'a' * 10",
    "b'\\x00'",
    "[1] * 10**9",
    "(y := 2)",
    "1 if True else 2",
    "True + 1",
    "max(*[1, 2])",
    "max(1, key=len)",
    "not 1",
    "~1",
    "1 < 2",
]

RESOURCE_ATTACKS = [
    "9**9**9",
    "10**1001",
    "(10**1000)**1000",
    "2**4000 * 2**4000 * 2**4000",
    "round(1, -10**9)",
    "round(10**1000, -10**9)",
    "1e308 * 10",
    "10**1000 / 3",
    "(" * 10_000 + "1" + ")" * 10_000,
    "(" * 240 + "1" + ")" * 240,
    "-" * 499 + "1",
    "+".join(["1"] * 300),
    "1" * 501,
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_sandbox_escapes_are_refused(expression: str) -> None:
    with pytest.raises(CalculatorError):
        evaluate(expression)


@pytest.mark.parametrize("expression", RESOURCE_ATTACKS, ids=lambda e: e[:30])
def test_resource_attacks_are_refused_before_they_cost(expression: str) -> None:
    with pytest.raises(CalculatorError):
        evaluate(expression)


@pytest.mark.parametrize(
    ("expression", "value"),
    [("round(2.675, 2)", 2.67), ("round(1234, -2)", 1200), ("2**-3", 0.125), ("max(3, 10**3) % 7", 6)],
)
def test_ordinary_arithmetic_still_works(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression", ["(-8)**(1/3)", "0**-1", "1 % 0", "min()", "round(1.5, 2.5)"])
def test_arithmetic_errors_are_calculator_errors(expression: str) -> None:
    with pytest.raises(CalculatorError):
        evaluate(expression)
