"""Preference pairs (DPO): the completion as ``chosen``, a plausibly worse answer as ``rejected``, judged.

Runs after reasoning traces, when the run's training type is ``preference_pairs``. For each row:

1. **A flaw is chosen** from `FLAWS` deterministically per row (a hash of the seed, ``_row`` and the original
   prompt), so a re-run picks the same flaw and the flaws spread evenly over a dataset.
2. **The rejected answer** is the chosen answer rewritten by the model to have exactly that flaw and nothing
   else different (``rejected_answer.yaml``). A pair that differs only by the flaw teaches the preference
   model that flaw, rather than incidental differences in topic or format.
3. **A judge confirms** that chosen beats rejected (``pair_judge.yaml``, temperature 0, JSON
   ``{"reason": str, "better": "A"|"B"}``). Which answer is shown as A is decided by a per-row hash and
   flipped on the second attempt, so a judge that favours a position cannot favour either side.
4. When the judge prefers the rejected answer (or the rewrite came back empty or unchanged), the rejected
   answer is written again once, with a stronger instruction, and judged again; if chosen still does not win,
   the row is rejected with the judge's reason.

The rejected answer is checked for instruction injection (`datamill.steps.injection`) before the judge sees
it: one repair, then the row is rejected with the reason.

Columns: ``chosen``, ``rejected``, ``rejected_flaw`` (a `Flaw.key`) and ``pair_judge_reason``.

The row's images go with the rewrite (a wrong fact about the image needs the image) and with the judge's
request when the judge's route has vision; a text-only judge compares the two answers on their text.

For the planner, `PreferencePairs.requests_for` gives the rewrite and the judge request of the first attempt
(the judge is rendered with the chosen answer standing in for the rejected one, which is of similar size);
``expected_output_tokens`` is their sum per row. The retry is not estimated: it only runs on a lost judgement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.completion import DEFAULT_EXPECTED_TOKENS, DEFAULT_MAX_TOKENS
from datamill.steps.dedup import normalize_text
from datamill.steps.images import row_images
from datamill.steps.injection import chat_checked, injection_reason
from datamill.steps.metadata_injection import pending_context, request_text
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle


@dataclass(frozen=True, slots=True)
class Flaw:
    """One way a rejected answer is made worse: a stable key and the instruction the model gets."""

    key: str
    instruction: str
    #: The instruction when the run has a blueprint, where it differs.
    with_blueprint: str | None = None

    def describe(self, has_blueprint: bool) -> str:
        """The instruction for a run with or without a blueprint."""
        return self.with_blueprint if has_blueprint and self.with_blueprint else self.instruction


#: The flaws a rejected answer may have, in a fixed order (the per-row choice indexes into it).
FLAWS: tuple[Flaw, ...] = (
    Flaw(
        "factual_error", "it states one plausible but wrong fact, number or step, as confidently as the rest"
    ),
    Flaw("incomplete", "it leaves out an important part of what the request asks for"),
    Flaw(
        "ignores_instruction",
        "it ignores one explicit instruction or constraint of the request (format, length, scope, audience)",
    ),
    Flaw(
        "wrong_tone",
        "its tone does not fit the request: too casual, too stiff or condescending",
        "its tone breaks the style guide: the voice, register or manner the style guide asks for is not kept",
    ),
    Flaw("verbose", "it is padded: repetitive and wordy, with filler that adds nothing to the answer"),
)
#: Rewrite-and-judge rounds per row: the first attempt and one retry.
ATTEMPTS = 2
#: Output-token cap of a judgement (a sentence of reason and the verdict).
JUDGE_MAX_TOKENS = 200
#: Typical judgement length in tokens, for estimates only.
JUDGE_EXPECTED_TOKENS = 60
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "better": {"type": "string", "enum": ["A", "B"]},
    },
    "required": ["reason", "better"],
    "additionalProperties": False,
}


def _row_hash(row: Row, seed: int, purpose: str) -> int:
    # Expanded rows share their source's ``_row``; ``_variant`` and their translated prompt tell them apart.
    parts = (seed, row.get("_row"), row.get("_variant") or 0, row.get("original_prompt") or "", purpose)
    key = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def choose_flaw(row: Row, seed: int = 0) -> Flaw:
    """The flaw of ``row``'s rejected answer: the same for the same row and seed, spread evenly over rows."""
    return FLAWS[_row_hash(row, seed, "flaw") % len(FLAWS)]


def chosen_is_a(row: Row, seed: int = 0, attempt: int = 0) -> bool:
    """Whether the judge sees the chosen answer as A: a per-row coin, flipped on each later attempt."""
    return bool((_row_hash(row, seed, "order") + attempt) % 2 == 0)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judgement of a pair: did chosen win, and why."""

    chosen_wins: bool
    reason: str


class PreferencePairs(RowStep):
    """Writes ``chosen``, ``rejected``, ``rejected_flaw`` and ``pair_judge_reason`` (see the module doc).

    Args:
        model: writes the rejected answers.
        judge: compares chosen and rejected; defaults to ``model``.
        blueprint: the run's blueprint (the style both answers are judged against), or None.
        token_range: the run's length target, which sizes the rejected answer's token cap.
        seed: varies the flaw choice and the A/B order between runs.
        temperature: sampling temperature of the rewrite.
    """

    name: ClassVar[str] = "preference_pairs"
    model: ModelHandle
    input_columns = (
        "enhanced_prompt",
        "original_prompt",
        "enhanced_completion",
        "_context",
        "_row",
        "_images",
    )
    output_columns = ("chosen", "rejected", "rejected_flaw", "pair_judge_reason")

    def __init__(
        self,
        model: ModelHandle,
        *,
        judge: ModelHandle | None = None,
        blueprint: str | None = None,
        token_range: tuple[int, int] | None = None,
        seed: int = 0,
        temperature: float = 0.8,
    ) -> None:
        self.model = model
        self.judge = judge or model
        self.rewrite_template = load_template("rejected_answer")
        self.judge_template = load_template("pair_judge")
        self.blueprint = blueprint or ""
        self.seed = seed
        self.temperature = temperature
        # A padded answer needs room beyond the length target; a cut-off one is still worse.
        self.max_tokens = int(token_range[1] * 1.5) + 16 if token_range else DEFAULT_MAX_TOKENS
        answer_tokens = sum(token_range) // 2 if token_range else DEFAULT_EXPECTED_TOKENS
        self.expected_output_tokens = answer_tokens + JUDGE_EXPECTED_TOKENS

    def rewrite_request(self, row: Row, chosen: str, flaw: Flaw, attempt: int = 0) -> ChatRequest:
        """The request for a rejected answer with ``flaw``; a later attempt asks for a clearer flaw."""
        messages = self.rewrite_template.render(
            prompt=request_text(row),
            context=pending_context(row),
            chosen=chosen,
            blueprint=self.blueprint,
            flaw=flaw.describe(bool(self.blueprint)),
            attempt=attempt,
        )
        messages = with_images(messages, row_images(row))
        # A distinct seed per attempt keeps the retry from being answered by the response cache.
        return ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature, seed=attempt)

    def judge_request(self, row: Row, chosen: str, rejected: str, attempt: int = 0) -> ChatRequest:
        """The judge's request comparing the two answers, in this row's A/B order for ``attempt``."""
        first, second = (chosen, rejected) if chosen_is_a(row, self.seed, attempt) else (rejected, chosen)
        messages = self.judge_template.render(
            prompt=request_text(row),
            context=pending_context(row),
            blueprint=self.blueprint,
            answer_a=first,
            answer_b=second,
        )
        if self.judge.route.vision:
            messages = with_images(messages, row_images(row))
        return ChatRequest(messages, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, json_schema=JUDGE_SCHEMA)

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The first attempt's rewrite and judge requests (the chosen answer stands in for the rejected)."""
        chosen = str(row.get("enhanced_completion") or row.get("original_completion") or "")
        flaw = choose_flaw(row, self.seed)
        return [self.rewrite_request(row, chosen, flaw), self.judge_request(row, chosen, chosen)]

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        chosen = str(row.get("enhanced_completion") or "").strip()
        if not chosen:
            raise RowRejected("preference_pairs: the row has no completion to use as the chosen answer")
        flaw = choose_flaw(row, self.seed)
        verdict = Verdict(False, "")
        for attempt in range(ATTEMPTS):
            rejected = await self._rewrite(row, chosen, flaw, attempt)
            verdict = await self._judge(row, chosen, rejected, attempt)
            if verdict.chosen_wins:
                row["chosen"] = chosen
                row["rejected"] = rejected
                row["rejected_flaw"] = flaw.key
                row["pair_judge_reason"] = verdict.reason
                return
        raise RowRejected(
            f"preference_pairs: chosen did not beat the rejected answer ({flaw.key}) after {ATTEMPTS} "
            f"attempts: {verdict.reason}"
        )

    async def _rewrite(self, row: Row, chosen: str, flaw: Flaw, attempt: int) -> str:
        request = self.rewrite_request(row, chosen, flaw, attempt)
        checked = await chat_checked(self.model, request, tag=self.name)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        return checked.text

    async def _judge(self, row: Row, chosen: str, rejected: str, attempt: int) -> Verdict:
        # Not worth a judge call: an empty or unchanged rewrite is no pair at all.
        if not rejected:
            return Verdict(False, "the rejected answer came back empty")
        if normalize_text(rejected) == normalize_text(chosen):
            return Verdict(False, "the rejected answer came back identical to the chosen one")
        result = await self.judge.chat(self.judge_request(row, chosen, rejected, attempt), tag=self.name)
        data = result.data if isinstance(result.data, dict) else {}
        better = data.get("better")
        reason = str(data.get("reason") or "").strip() or "(the judge gave no reason)"
        chosen_label = "A" if chosen_is_a(row, self.seed, attempt) else "B"
        return Verdict(better == chosen_label, reason)
