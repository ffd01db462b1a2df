"""The ``calculator`` tool: the model lists a sample's arithmetic, datamill computes it, the model fixes it.

`evaluate` is the sandbox. It never calls ``eval`` or ``exec``: it parses the expression with ``ast`` and
interprets a whitelist of nodes (numbers, + - * / // % **, unary signs, parentheses and the functions in
`FUNCTIONS`), so there is no name lookup, no attribute access, no import and no I/O by construction. Time
and memory are bounded by the input size (`MAX_EXPRESSION_CHARS`, `MAX_NODES`), by refusing exponents above
`MAX_EXPONENT` and powers whose result would be wider than `MAX_INT_BITS` bits (before computing them),
`round` to more than `MAX_ROUND_DIGITS` digits either way, and any intermediate number wider than
`MAX_INT_BITS` bits.

`CalculatorCheck` runs after the draft: one call asks the generation model for the calculations in the
sample (JSON: expression and the value the sample states); each is evaluated; when a stated value is wrong,
one revision call gets the correct results and fixes the sample. About doubles the calls of a sample. A fix
cut off at the token limit raises `OutputCut` (the candidate is made again) rather than replacing the sample.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.generation.sample import SampleTask
from datamill.steps.generation.writer import raise_if_cut
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 1_000
MAX_INT_BITS = 4_096
#: Most calculations checked per sample.
MAX_CALCULATIONS = 10

#: Most digits `round` may keep or drop (``round(1, -10**9)`` would compute ten to the billionth power).
MAX_ROUND_DIGITS = 100

Number = int | float


def _round(value: Number, ndigits: Number | None = None) -> Number:
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS):
        raise CalculatorError(f"round takes a whole number of digits up to {MAX_ROUND_DIGITS}")
    return round(value, ndigits)


FUNCTIONS: dict[str, Callable[..., Number]] = {"abs": abs, "round": _round, "min": min, "max": max}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
CALCULATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "calculations": {
            "type": "array",
            "maxItems": MAX_CALCULATIONS,
            "items": {
                "type": "object",
                "properties": {"expression": {"type": "string"}, "stated": {"type": "string"}},
                "required": ["expression", "stated"],
            },
        }
    },
    "required": ["calculations"],
}


class CalculatorError(ValueError):
    """An expression the sandbox refuses or cannot compute."""


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression (see the module docstring for what is allowed)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"not an arithmetic expression: {exc.msg}") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError(f"more than {MAX_NODES} parts")
    try:
        return _checked(_eval(tree.body))
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise CalculatorError(str(exc) or type(exc).__name__) from exc


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if node.keywords:
            raise CalculatorError("keyword arguments are not allowed")
        return _checked(FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    raise CalculatorError(f"{type(node).__name__} is not allowed")


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse a power before computing it when the result would be too large to be worth the time."""
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent above {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > MAX_INT_BITS:
        raise CalculatorError("number too large")


def _checked(value: object) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("number too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not finite")
    return value


def matches(stated: str, value: Number) -> bool:
    """Whether the text a sample states equals ``value`` (ignoring commas, currency and %; 0.5% tolerance)."""
    cleaned = stated.replace(",", "").strip().lstrip("$€£").rstrip("%").strip()
    try:
        number = float(cleaned)
    except ValueError:
        return False
    return math.isclose(number, float(value), rel_tol=0.005, abs_tol=1e-9)


class CalculatorCheck:
    """Finds the arithmetic in a sample, computes it in the sandbox, and has wrong values fixed."""

    name: ClassVar[str] = "gen_calculator"

    def __init__(self, model: ModelHandle, *, max_tokens: int = 1_024) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.find_template = load_template("gen_calculations")
        self.fix_template = load_template("gen_revise")

    def requests_for(self, task: SampleTask, text: str) -> list[ChatRequest]:
        """The request that lists the sample's calculations (a fix request follows only when one is wrong)."""
        messages = self.find_template.render(sample=text)
        seed = task.request_seed("calculator")
        return [
            ChatRequest(messages, max_tokens=512, temperature=0.0, json_schema=CALCULATIONS_SCHEMA, seed=seed)
        ]

    async def check(self, task: SampleTask, text: str) -> str:
        """``text`` with wrong calculations fixed (unchanged when all are right or none can be computed)."""
        found = await self.model.chat(self.requests_for(task, text)[0], tag=self.name)
        wrong = _wrong(found.data)
        if not wrong:
            return text
        instruction = "Correct these calculations, which a calculator checked: " + "; ".join(wrong) + "."
        messages = self.fix_template.render(
            **task.variables(), instruction=instruction, sample=text, seeds=[]
        )
        request = ChatRequest(
            messages, max_tokens=self.max_tokens, temperature=0.0, seed=task.request_seed("calc-fix")
        )
        fixed = await self.model.chat(request, tag=self.name)
        raise_if_cut(f"{self.name} fix", fixed, self.max_tokens)
        return fixed.text.strip() or text


def _wrong(data: Any) -> list[str]:
    items = data.get("calculations") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        expression, stated = str(item.get("expression", "")), str(item.get("stated", ""))
        try:
            value = evaluate(expression)
        except CalculatorError:
            continue  # not computable: leave it to the revisions
        if not matches(stated, value):
            out.append(f"{expression} = {value:g} (the sample says {stated})")
    return out
