"""Prompt metadata injection: fold a row's context columns and the run's constraints into its prompt.

A training row should carry everything its answer depends on. After column mapping the context columns sit
beside the prompt (``_context``, "name: value" lines), and the run's constraints live in the run config; a
model trained on ``(prompt, completion)`` alone would never see either. This step writes ``enhanced_prompt`` =
the context, the request, then the constraints, from a deterministic template (``metadata_injection.yaml``; no
model call), and sets ``_context_injected`` so later steps do not repeat the context. Prompt rephrase, which
runs next, turns the assembled text into one natural request.

The constraints are what the completion step is told that the prompt would not otherwise say:

- **length**: the ``length`` target as a word range (tokens × `WORDS_PER_TOKEN`), e.g. "Answer in about 30
  to 112 words." Without it the model learns the length as an unconditional habit rather than an instruction.
- **style**: a summary of the blueprint: its first sentences up to `STYLE_SUMMARY_CHARS` characters, leaving
  out persona sentences ("You are Acme's support agent.", "Act as ..."), which in a user's request would read
  as an instruction to role-play. The full blueprint stays the completion's system prompt; the prompt only
  names the style. A blueprint that is all persona adds no style line.

Either can be turned off (``include_length`` / ``include_style``) for a run that wants the behaviour learnt as
a default instead of as an instruction. The labels ("Context:", "Answer in about ...") are English; for rows
that language expansion produced, rephrase rewrites the whole request in the row's language.

The helpers `request_text` and `pending_context` are what every later step uses to read a row's request and
the context that is not yet part of it.
"""

from __future__ import annotations

import re
from typing import ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.templates import load_template

#: Row key set by this step: the context is part of ``enhanced_prompt``, so later steps must not add it again.
CONTEXT_INJECTED = "_context_injected"
#: Rough words per token for English text, used to state token targets as words people (and models) count.
WORDS_PER_TOKEN = 0.75
#: Longest style summary put into a prompt; a blueprint is a style guide, the prompt only names the style.
STYLE_SUMMARY_CHARS = 160

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_PERSONA = re.compile(r"(you are|you're|act as|acting as|your role)\b|as an? [\w' -]*,", re.IGNORECASE)


def request_text(row: Row) -> str:
    """The request as it stands: ``enhanced_prompt`` when a step wrote one, else ``original_prompt``."""
    return str(row.get("enhanced_prompt") or row.get("original_prompt") or "")


def pending_context(row: Row) -> str:
    """The row's rendered context, or "" when it is already part of the prompt (or there is none)."""
    if row.get(CONTEXT_INJECTED):
        return ""
    return str(row.get("_context") or "")


def word_range(token_range: tuple[int, int]) -> tuple[int, int]:
    """A token range as (lowest, highest) words, never below one word."""
    low, high = token_range
    return max(1, int(low * WORDS_PER_TOKEN)), max(1, int(high * WORDS_PER_TOKEN))


def length_constraint(token_range: tuple[int, int] | None) -> str:
    """The length target as an instruction a user might write, or "" without a target."""
    if token_range is None:
        return ""
    low, high = word_range(token_range)
    if low <= 1:
        return f"Answer in at most {high} words."
    return f"Answer in about {low} to {high} words."


def style_summary(blueprint: str | None) -> str:
    """The first non-persona sentences of a blueprint, at most `STYLE_SUMMARY_CHARS` characters."""
    sentences = [s for s in _SENTENCE_END.split(" ".join((blueprint or "").split())) if s]
    kept = [s for s in sentences if not _PERSONA.match(s)]
    if not kept:
        return ""
    summary = kept[0]
    for sentence in kept[1:]:
        if len(summary) + 1 + len(sentence) > STYLE_SUMMARY_CHARS:
            break
        summary = f"{summary} {sentence}"
    if len(summary) <= STYLE_SUMMARY_CHARS:
        return summary
    return summary[:STYLE_SUMMARY_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "..."


class MetadataInjection(RowStep):
    """Writes ``enhanced_prompt``: context, request and constraints in one text; sets ``_context_injected``.

    Args:
        token_range: the run's length target (``Length.token_range``), or None.
        blueprint: the run's blueprint, summarised as a style constraint, or None.
        include_length: state the length target in the prompt.
        include_style: state the blueprint's style in the prompt.
    """

    name: ClassVar[str] = "prompt_metadata_injection"
    input_columns = ("original_prompt", "enhanced_prompt", "_context")
    output_columns = ("enhanced_prompt", CONTEXT_INJECTED)
    #: No model call: nothing to generate.
    expected_output_tokens = 0
    #: A template: the estimate runs it, so later steps are quoted on the injected prompt.
    estimate_on_sample = True

    def __init__(
        self,
        *,
        token_range: tuple[int, int] | None = None,
        blueprint: str | None = None,
        include_length: bool = True,
        include_style: bool = True,
    ) -> None:
        self.template = load_template("metadata_injection")
        constraints = []
        if include_length and token_range is not None:
            constraints.append(length_constraint(token_range))
        summary = style_summary(blueprint) if include_style else ""
        if summary:
            constraints.append(f"Style: {summary}")
        self.constraints = tuple(constraints)

    def inject(self, row: Row) -> str:
        """The row's prompt with its pending context and the run's constraints folded in."""
        messages = self.template.render(
            prompt=request_text(row), context=pending_context(row), constraints=self.constraints
        )
        return messages[0].content if messages else ""

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """No model requests: injection is a template."""
        return []

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        row["enhanced_prompt"] = self.inject(row)
        row[CONTEXT_INJECTED] = True
