"""Prompt rephrase: the same request, said more clearly, with the same intent.

The step rewrites the request as it stands: ``enhanced_prompt`` when metadata injection (or another step)
already wrote one, else ``original_prompt``. After injection that text holds the context and the constraints,
and the rewrite weaves them into one natural request (the template's few-shot turns show how); without
injection the context is shown to the model for reference only and is not part of the rewrite. The row's
images go with the request, so a rewrite of "what is in this picture?" stays about that picture.

For the planner, `Rephrase.requests_for` renders the exact request a row would get;
``expected_output_tokens`` is a typical rewritten request (`EXPECTED_OUTPUT_TOKENS`), and
`Rephrase.estimate_output_tokens` sizes it for a given row (a rewrite is about as long as what it rewrites).

The text that was rewritten is kept in ``_rephrase_source`` (`REPHRASE_SOURCE`), so the meaning check compares
the rewrite with what the model was given (context and constraints included) and, when it reverts, restores
that text rather than the bare original prompt.

The rewrite is checked for instruction injection (`datamill.steps.injection`, as a prompt: answer-turn
prefixes count too); after one repair that still injects, the row keeps the request as it stood.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.images import row_images
from datamill.steps.injection import chat_checked
from datamill.steps.metadata_injection import pending_context, request_text
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Typical length of a rewritten request in tokens (one or two sentences plus folded-in context).
EXPECTED_OUTPUT_TOKENS = 60
#: Characters per token used to size a rewrite from the text it rewrites (English text, common tokenizers).
CHARS_PER_TOKEN = 4

#: Row key holding the text the rewrite was made from (the request as it stood before this step).
REPHRASE_SOURCE = "_rephrase_source"

_LABEL = re.compile(r"^(rewritten|rephrased)( request| prompt| question)?\s*:\s*", re.IGNORECASE)


class Rephrase(RowStep):
    """Writes ``enhanced_prompt`` from the request as it stands (see the module docstring)."""

    name: ClassVar[str] = "prompt_rephrase"
    model: ModelHandle
    input_columns = ("enhanced_prompt", "original_prompt", "_context", "_images")
    output_columns = ("enhanced_prompt", REPHRASE_SOURCE)
    expected_output_tokens = EXPECTED_OUTPUT_TOKENS

    def __init__(self, model: ModelHandle, *, max_tokens: int = 256, temperature: float = 0.3) -> None:
        self.model = model
        self.template = load_template("rephrase")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The request this step sends for ``row``; none when the request is empty."""
        prompt = request_text(row)
        if not prompt.strip():
            return []
        messages = self.template.render(prompt=prompt, context=pending_context(row))
        messages = with_images(messages, row_images(row))
        return [ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature)]

    def estimate_output_tokens(self, row: Row) -> int:
        """The expected size of the rewrite of ``row``'s request: about the size of the request itself."""
        return min(self.max_tokens, math.ceil(len(request_text(row)) / CHARS_PER_TOKEN))

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        requests = self.requests_for(row)
        row[REPHRASE_SOURCE] = request_text(row)
        if not requests:
            row["enhanced_prompt"] = row[REPHRASE_SOURCE]
            return
        checked = await chat_checked(
            self.model, requests[0], tag=self.name, clean=clean_rephrase, prompt_like=True
        )
        if checked.finding is not None:
            # An injected rewrite must not become the prompt of later steps; the original wording is safe.
            row["enhanced_prompt"] = request_text(row)
            return
        if not checked.text:
            raise RowRejected("prompt_rephrase: the model returned an empty rephrase")
        row["enhanced_prompt"] = checked.text


def clean_rephrase(text: str) -> str:
    """Strip labels and wrapping quotes that models add around a rewritten request."""
    text = _LABEL.sub("", text.strip())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text
