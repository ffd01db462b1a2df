"""Reasoning traces: the step-by-step thinking that leads from a row's prompt to its completion.

Runs after completion generation. The model is given the request (with its context when metadata injection
did not fold it in) and the final answer, and writes short numbered steps that arrive at that answer, as if
thinking before answering (``reasoning.yaml``; one worked example keeps small models on format). Showing the
answer is what makes the trace consistent with the completion it precedes; the prompt forbids mentioning it.
The trace lands in the ``reasoning`` column; an empty trace rejects the row, since a reasoning dataset with
holes trains the model to skip its reasoning; so does a trace that still carries an instruction injection
after one repair (`datamill.steps.injection`). The row's images go with the request: the steps reason from
what the image shows, as the answer did.

For the planner, `ReasoningTraces.requests_for` renders the request for a row; before completion has run (an
estimate over mapped rows) it stands in the original completion for the answer. ``expected_output_tokens`` is
`EXPECTED_OUTPUT_TOKENS`, a typical trace of four to eight short steps.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest
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

_LABEL = re.compile(r"^(reasoning|thinking|thoughts|steps)( trace)?\s*:\s*", re.IGNORECASE)


class ReasoningTraces(RowStep):
    """Writes ``reasoning`` for the row's prompt and ``enhanced_completion``."""

    name: ClassVar[str] = "reasoning_traces"
    model: ModelHandle
    input_columns = ("enhanced_prompt", "original_prompt", "enhanced_completion", "_context", "_images")
    output_columns = ("reasoning",)
    expected_output_tokens = EXPECTED_OUTPUT_TOKENS

    def __init__(
        self, model: ModelHandle, *, max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.3
    ) -> None:
        self.model = model
        self.template = load_template("reasoning")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The one request this step sends for ``row``."""
        completion = row.get("enhanced_completion") or row.get("original_completion") or ""
        messages = self.template.render(
            prompt=request_text(row), context=pending_context(row), completion=completion
        )
        messages = with_images(messages, row_images(row))
        return [ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature)]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        (request,) = self.requests_for(row)
        checked = await chat_checked(self.model, request, tag=self.name, clean=clean_trace)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        text = checked.text
        if not text:
            raise RowRejected("reasoning_traces: the model returned an empty reasoning trace")
        row["reasoning"] = text


def clean_trace(text: str) -> str:
    """Strip a leading label ("Reasoning:") that models add before the steps."""
    return _LABEL.sub("", text.strip()).strip()
