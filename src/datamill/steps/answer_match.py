"""Does the answer a reasoning trace reached agree with the row's completion?

A forward reasoning trace (`datamill.steps.reasoning`) ends with a ``Final answer:`` line that the model wrote
without seeing the completion. This module takes that line apart from the steps (`split_trace`) and decides
whether it agrees with the completion, the way verifiable-answer pipelines do (the exact-match scoring of
GSM8K and MATH, with an LLM judge for answers that no rule can compare):

1. **Closed answers, by rule** (`closed_verdict`). When both answers are short (at most `CLOSED_MAX_WORDS`
   words after normalisation: a number, yes or no, a name, a letter), they agree when their normalised texts
   are equal or both hold exactly one number and the numbers are equal (``1,000`` = ``1000`` = ``1000.0``);
   they disagree when the numbers differ or one says yes and the other no. Anything else is left to the judge.
2. **Open answers, by a judge** (`AnswerAgreement`): ``answer_agreement.yaml`` asks whether the two reach the
   same conclusion, ignoring wording, language, length and detail, and replies
   ``{"reason": str, "agree": bool}`` (the reason first, so the verdict follows from it), at temperature 0.

The judge is the run's judge model; a reply without a verdict counts as a disagreement, so a row is never
kept on an unread verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamill.llm.types import ChatRequest
from datamill.steps.dedup import normalize_text
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Longest answer, in normalised words, that counts as closed (compared by rule).
CLOSED_MAX_WORDS = 6
#: Output-token cap of an agreement verdict (a sentence of reason and the boolean).
JUDGE_MAX_TOKENS = 200
#: Typical verdict length in tokens, for estimates only.
JUDGE_EXPECTED_TOKENS = 60
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "agree": {"type": "boolean"}},
    "required": ["reason", "agree"],
    "additionalProperties": False,
}

# "Final answer:", also bold or as a heading ("**Final answer:** 42", "### Final answer: 42").
_FINAL = re.compile(r"^[ \t>#*_-]*final\s+answer\s*[*_]*\s*[:：]\s*[*_]*[ \t]*", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
_YES = frozenset({"yes", "true", "correct", "oui", "sí", "si", "ja", "sim"})
_NO = frozenset({"no", "false", "incorrect", "non", "nein", "não", "nao"})


def split_trace(text: str) -> tuple[str, str | None]:
    """The steps of a trace and the final answer it reached (None for an empty trace).

    The last ``Final answer:`` line counts, and what follows it, to the end, is the answer; the steps are
    what comes before it. A trace without that line (models drop the label now and then) is all steps, and
    its last line is the answer it reached, as answer extraction in evaluation harnesses takes the last line.
    """
    matches = list(_FINAL.finditer(text))
    if not matches:
        steps = text.strip()
        return steps, (steps.splitlines()[-1].strip() if steps else None)
    last = matches[-1]
    answer = text[last.end() :].strip().strip("*_").strip()
    return text[: last.start()].strip(), answer or None


def closed_verdict(reached: str, completion: str) -> bool | None:
    """Agreement of two short answers decided by rule; None when a rule cannot decide (module docstring)."""
    a, b = normalize_text(reached), normalize_text(completion)
    if not a or not b or len(a.split()) > CLOSED_MAX_WORDS or len(b.split()) > CLOSED_MAX_WORDS:
        return None
    if a == b:
        return True
    numbers_a, numbers_b = _numbers(reached), _numbers(completion)
    if len(numbers_a) == 1 and len(numbers_b) == 1:
        return numbers_a[0] == numbers_b[0]
    polarity_a, polarity_b = _polarity(a), _polarity(b)
    if polarity_a is not None and polarity_b is not None and polarity_a != polarity_b:
        return False
    return None


def _numbers(text: str) -> list[float]:
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


def _polarity(normalised: str) -> bool | None:
    first = normalised.split()[0]
    if first in _YES:
        return True
    if first in _NO:
        return False
    return None


@dataclass(frozen=True, slots=True)
class Agreement:
    """Whether the answers agree, how it was decided (``rule`` or ``judge``) and why."""

    agree: bool
    method: str
    reason: str


class AnswerAgreement:
    """Compares a reached answer with a completion: by rule when both are closed, else with ``judge``."""

    def __init__(self, judge: ModelHandle, *, tag: str) -> None:
        self.judge = judge
        self.tag = tag
        self.template = load_template("answer_agreement")

    def request(self, prompt: str, context: str, reached: str, completion: str) -> ChatRequest:
        """The judge's request for one comparison."""
        messages = self.template.render(
            prompt=prompt, context=context, reached=reached, completion=completion
        )
        return ChatRequest(messages, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, json_schema=JUDGE_SCHEMA)

    async def compare(self, prompt: str, context: str, reached: str, completion: str) -> Agreement:
        """Whether ``reached`` and ``completion`` give the same answer to ``prompt``."""
        verdict = closed_verdict(reached, completion)
        if verdict is not None:
            how = "the same short answer" if verdict else "a different short answer"
            return Agreement(verdict, "rule", f"{reached!r} and {completion!r} are {how}")
        result = await self.judge.chat(self.request(prompt, context, reached, completion), tag=self.tag)
        data = result.data if isinstance(result.data, dict) else {}
        reason = str(data.get("reason") or "").strip() or "(the judge gave no reason)"
        return Agreement(data.get("agree") is True, "judge", reason)
