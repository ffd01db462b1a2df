"""Prompt rephrase: the same request, said more clearly, with the same intent."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

_LABEL = re.compile(r"^(rewritten|rephrased)( request| prompt| question)?\s*:\s*", re.IGNORECASE)


class Rephrase(RowStep):
    """Writes ``enhanced_prompt`` from ``original_prompt`` (and the row's context, for reference)."""

    name: ClassVar[str] = "prompt_rephrase"
    input_columns = ("original_prompt", "_context")
    output_columns = ("enhanced_prompt",)

    def __init__(self, model: ModelHandle, *, max_tokens: int = 256, temperature: float = 0.3) -> None:
        self.model = model
        self.template = load_template("rephrase")
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        prompt = row.get("original_prompt") or ""
        if not prompt.strip():
            row["enhanced_prompt"] = prompt
            return
        messages = self.template.render(prompt=prompt, context=row.get("_context") or "")
        request = ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature)
        result = await self.model.chat(request, tag=self.name)
        text = clean_rephrase(result.text)
        if not text:
            raise RowRejected("prompt_rephrase: the model returned an empty rephrase")
        row["enhanced_prompt"] = text


def clean_rephrase(text: str) -> str:
    """Strip labels and wrapping quotes that models add around a rewritten request."""
    text = _LABEL.sub("", text.strip())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text
