"""Completion generation: the answer to each prompt, in the blueprint's voice and within a length target."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Output-token cap when no length target is set.
DEFAULT_MAX_TOKENS = 1024


def length_guidance(token_range: tuple[int, int] | None) -> str:
    """The sentence that tells the model how long to answer; roughly 0.75 words per token."""
    if token_range is None:
        return ""
    low, high = token_range
    return (
        f"Keep the answer between {low} and {high} tokens "
        f"(about {max(1, int(low * 0.75))} to {int(high * 0.75)} words)."
    )


class GenerateCompletion(RowStep):
    """Writes ``enhanced_completion`` for ``enhanced_prompt`` (falling back to ``original_prompt``)."""

    name: ClassVar[str] = "completion"
    input_columns = ("enhanced_prompt", "original_prompt", "original_completion", "_context")
    output_columns = ("enhanced_completion",)

    def __init__(
        self,
        model: ModelHandle,
        *,
        blueprint: str | None = None,
        token_range: tuple[int, int] | None = None,
        temperature: float = 0.7,
    ) -> None:
        self.model = model
        self.template = load_template("completion")
        self.blueprint = blueprint
        self.guidance = length_guidance(token_range)
        # Leave headroom above the target so answers end on a sentence rather than a cut.
        self.max_tokens = int(token_range[1] * 1.25) + 16 if token_range else DEFAULT_MAX_TOKENS
        self.temperature = temperature

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        prompt = row.get("enhanced_prompt") or row.get("original_prompt") or ""
        messages = self.template.render(
            prompt=prompt,
            context=row.get("_context") or "",
            draft=row.get("original_completion") or "",
            blueprint=self.blueprint or "",
            length_guidance=self.guidance,
        )
        request = ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature)
        result = await self.model.chat(request, tag=self.name)
        text = result.text.strip()
        if not text:
            raise RowRejected("completion: the model returned an empty answer")
        row["enhanced_completion"] = text
