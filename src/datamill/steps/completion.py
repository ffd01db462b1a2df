"""Completion generation: the answer to each prompt, in the blueprint's voice and within a length target.

The blueprint is the system prompt, followed by the length guidance and an instruction to answer in the
language the request is written in (language expansion produces rows in other languages). The user message
holds, in order: the row's context unless metadata injection already put it into the prompt, the numbered
source passages when grounding found some (``_passages``; the model is told to answer from them and cite
them as [1], [2]), the request, and the original completion as a draft to improve on. With grounding on
(``show_draft=False``) no draft is shown: the original answer is ungrounded, and shown to the model it would
come back as the answer whether or not the sources support it. The row's images
(an image column) go with the user message, so the answer is about what the image shows.

For the planner, `GenerateCompletion.requests_for` renders the exact request a row would get, and
``expected_output_tokens`` is the middle of the length target, or `DEFAULT_EXPECTED_TOKENS` without one.

The answer goes into later steps' prompts, so it is checked for instruction injection
(`datamill.steps.injection`): one repair, then the row is rejected with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.images import row_images
from datamill.steps.injection import chat_checked, injection_reason
from datamill.steps.metadata_injection import pending_context, request_text, word_range
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Output-token cap when no length target is set.
DEFAULT_MAX_TOKENS = 1024
#: Typical answer length in tokens when no length target is set (a few paragraphs), for estimates only.
DEFAULT_EXPECTED_TOKENS = 300


def length_guidance(token_range: tuple[int, int] | None) -> str:
    """The sentence that tells the model how long to answer; roughly 0.75 words per token."""
    if token_range is None:
        return ""
    low, high = token_range
    low_words, high_words = word_range(token_range)
    return f"Keep the answer between {low} and {high} tokens (about {low_words} to {high_words} words)."


def row_passages(row: Row) -> list[dict[str, Any]]:
    """The grounding passages on a row (``_passages``) as ``{n, source, text}``; [] when there are none.

    Passages keep the number grounding gave them (the citation the answer uses); one without a number gets
    its position. Passages with no text are skipped.
    """
    out = []
    for position, passage in enumerate(row.get("_passages") or [], start=1):
        if not isinstance(passage, dict):
            continue
        text = " ".join(str(passage.get("text") or "").split())
        if text:
            number = passage.get("n") or position
            out.append({"n": number, "source": str(passage.get("source") or ""), "text": text})
    return out


def answer_budget(token_range: tuple[int, int] | None) -> tuple[int, int]:
    """The output-token cap of an answer and the size expected, for a length target (or none)."""
    if token_range is None:
        return DEFAULT_MAX_TOKENS, DEFAULT_EXPECTED_TOKENS
    # Leave headroom above the target so answers end on a sentence rather than a cut.
    return int(token_range[1] * 1.25) + 16, sum(token_range) // 2


class GenerateCompletion(RowStep):
    """Writes ``enhanced_completion`` for ``enhanced_prompt`` (falling back to ``original_prompt``)."""

    name: ClassVar[str] = "completion"
    model: ModelHandle
    input_columns = (
        "enhanced_prompt",
        "original_prompt",
        "original_completion",
        "_context",
        "_passages",
        "_images",
    )
    output_columns = ("enhanced_completion",)

    def __init__(
        self,
        model: ModelHandle,
        *,
        blueprint: str | None = None,
        token_range: tuple[int, int] | None = None,
        temperature: float = 0.7,
        show_draft: bool = True,
    ) -> None:
        self.model = model
        self.show_draft = show_draft
        self.template = load_template("completion")
        self.blueprint = blueprint
        self.guidance = length_guidance(token_range)
        self.max_tokens, self.expected_output_tokens = answer_budget(token_range)
        self.temperature = temperature

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The one request this step sends for ``row``."""
        messages = self.template.render(
            prompt=request_text(row),
            context=pending_context(row),
            passages=row_passages(row),
            draft=(row.get("original_completion") or "") if self.show_draft else "",
            blueprint=self.blueprint or "",
            length_guidance=self.guidance,
        )
        messages = with_images(messages, row_images(row))
        return [ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature)]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        (request,) = self.requests_for(row)
        checked = await chat_checked(self.model, request, tag=self.name)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        if not checked.text:
            raise RowRejected("completion: the model returned an empty answer")
        row["enhanced_completion"] = checked.text
