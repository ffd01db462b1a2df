"""Reasoning traces, written forward: the model works the request out, and its answer must match the row's.

Runs after completion generation. The model is given the request (with its context when metadata injection
did not fold it in), never the completion, and writes short numbered steps that end with a
``Final answer:`` line (``reasoning.yaml``; one worked example keeps small models on format). A trace written
with the answer in view justifies whatever it is shown, a wrong answer included; one written forward is
evidence, because its answer can be checked. The answer it reached is compared with the row's completion
(`datamill.steps.answer_match`: by rule for closed answers such as a number or yes/no, else by the run's
judge model), the method of rejection-sampled reasoning data (STaR, and the verified traces of GSM8K-style
pipelines): keep a trace only when its answer is the dataset's.

A trace whose answer disagrees, or that gives no final answer, is written once more (another request seed,
so the response cache does not answer it); when the second one disagrees too, the row is rejected with a
reason naming the disagreement and the judge's reason. The ``reasoning`` column holds the steps without the
final answer line (the completion that follows is the answer). An empty trace rejects the row, since a
reasoning dataset with holes trains the model to skip its reasoning; so does a trace that still carries an
instruction injection after one repair (`datamill.steps.injection`). The row's images go with the request:
the steps reason from what the image shows, as the answer did.

For the planner, `ReasoningTraces.requests_for` renders the trace request and the judge request for a row
(before completion has run, an estimate over mapped rows, the original completion stands in for the answer);
``expected_output_tokens`` is `EXPECTED_OUTPUT_TOKENS` (a typical trace of four to eight short steps) plus a
verdict. A retry runs only on a disagreement and is not estimated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.answer_match import JUDGE_EXPECTED_TOKENS, Agreement, AnswerAgreement, split_trace
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.images import row_images
from datamill.steps.injection import chat_checked, injection_reason
from datamill.steps.metadata_injection import pending_context, request_text
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Output-token cap for one trace: room for a long derivation, short of a second answer.
DEFAULT_MAX_TOKENS = 512
#: Typical trace length in tokens (four to eight short steps), for estimates only.
EXPECTED_OUTPUT_TOKENS = 150
#: Traces written per row: the first and one more when its answer disagrees with the completion.
ATTEMPTS = 2

_LABEL = re.compile(r"^(reasoning|thinking|thoughts|steps)( trace)?\s*:\s*", re.IGNORECASE)


class ReasoningTraces(RowStep):
    """Writes ``reasoning`` for the row's prompt, checked against ``enhanced_completion``.

    Args:
        model: writes the traces.
        judge: compares an open answer with the completion; defaults to ``model``.
        max_tokens: output-token cap of a trace.
        temperature: sampling temperature of a trace.
    """

    name: ClassVar[str] = "reasoning_traces"
    model: ModelHandle
    input_columns = ("enhanced_prompt", "original_prompt", "enhanced_completion", "_context", "_images")
    output_columns = ("reasoning",)
    expected_output_tokens = EXPECTED_OUTPUT_TOKENS + JUDGE_EXPECTED_TOKENS

    def __init__(
        self,
        model: ModelHandle,
        *,
        judge: ModelHandle | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.3,
    ) -> None:
        self.model = model
        self.agreement = AnswerAgreement(judge or model, tag=self.name)
        self.template = load_template("reasoning")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def trace_request(self, row: Row, attempt: int = 0) -> ChatRequest:
        """The request for a trace of ``row``; a later attempt carries another seed."""
        messages = self.template.render(prompt=request_text(row), context=pending_context(row))
        messages = with_images(messages, row_images(row))
        return ChatRequest(
            messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            seed=attempt if attempt else None,
        )

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The trace request and the judge request of the first attempt (the completion stands in)."""
        completion = str(row.get("enhanced_completion") or row.get("original_completion") or "")
        judge = self.agreement.request(request_text(row), pending_context(row), completion, completion)
        return [self.trace_request(row), judge]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        completion = str(row.get("enhanced_completion") or "").strip()
        if not completion:
            raise RowRejected("reasoning_traces: the row has no completion to check the trace against")
        problem = ""
        for attempt in range(ATTEMPTS):
            steps, reached = await self._trace(row, attempt)
            if reached is None:
                problem = "the trace gave no final answer"
                continue
            agreement = await self.agreement.compare(
                request_text(row), pending_context(row), reached, completion
            )
            if agreement.agree:
                row["reasoning"] = steps
                return
            problem = _disagreement(reached, agreement)
        raise RowRejected(f"reasoning_traces: after {ATTEMPTS} traces, {problem}")

    async def _trace(self, row: Row, attempt: int) -> tuple[str, str | None]:
        request = self.trace_request(row, attempt)
        checked = await chat_checked(self.model, request, tag=self.name, clean=clean_trace)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        steps, reached = split_trace(checked.text)
        if not steps:
            raise RowRejected("reasoning_traces: the model returned an empty reasoning trace")
        return steps, reached


def _disagreement(reached: str, agreement: Agreement) -> str:
    shown = " ".join(reached.split())[:120]
    how = f"{agreement.method}: {agreement.reason}"
    return f"the trace's final answer ({shown!r}) disagrees with the completion ({how})"


def clean_trace(text: str) -> str:
    """Strip a leading label ("Reasoning:") that models add before the steps."""
    return _LABEL.sub("", text.strip()).strip()
