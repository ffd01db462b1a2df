"""Preference pairs (DPO): a chosen and a rejected answer per row, ranked by a judge in both orders.

Runs after reasoning traces, when the run's training type is ``preference_pairs``. How the two answers are
made depends on the ``mode`` (``preference_mode`` run option):

- ``candidates`` (default; UltraFeedback's recipe): the row's completion and ``candidates − 1`` more answers
  sampled from the model at ``temperature`` (each with its own seed), plus one answer from each model of
  ``candidate_models``. Every two distinct candidates are compared by the judge in both orders
  (`datamill.steps.judging.PairwiseJudge`); a candidate's rank score is its mean margin over its
  comparisons. The best-ranked candidate is ``chosen`` and the worst ``rejected``. When every sample comes
  back the same as the completion (a model that samples deterministically), there is nothing to rank and
  the row's pair is made by ``revision`` instead (``pair_method`` says so).
- ``revision`` (CLAIR's minimal revision): the row's completion is ``rejected`` and ``chosen`` is the model's
  minimal revision of it (``pair_revision.yaml``): the faults fixed and everything else kept, so the pair
  differs only where the answer was wrong.
- ``flaw`` (an explicit option only): ``rejected`` is the completion rewritten with one flaw from `FLAWS`
  (``rejected_answer.yaml``), chosen per row by a hash of the seed and the row.

In every mode the pair is kept only when the judge's comparison of chosen against rejected, in both orders,
is **consistent** (both orders name the same winner) and its **margin** (the mean preference for chosen, on
the −2..2 scale of ``A>>B`` .. ``B>>A``) is at least ``min_margin``. Otherwise the row is rejected with the
reason: an inconsistent comparison (the verdict followed the position), a margin below the minimum, or
candidates that were all the same answer. Candidates equal after normalisation are compared once.

Columns: ``chosen``, ``rejected``, ``pair_margin`` (chosen over rejected), ``pair_method`` (the mode),
``pair_judge_reason`` (the judge's rationale with chosen shown first), ``pair_comparisons`` (every
comparison made: which candidates, both verdicts, margin, consistency) and ``rejected_flaw`` (the flaw's key
in ``flaw`` mode, else None).

Each generated answer is checked for instruction injection (`datamill.steps.injection`): a candidate with a
finding after its repair is dropped; in ``revision`` and ``flaw`` mode the row is rejected with the reason.
The row's images go with every request, and with the judge's when its route has vision.

For the planner, `PreferencePairs.requests_for` gives the generation requests and the judge requests of one
row (the completion stands in for the answers not yet written); ``expected_output_tokens`` sums them.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.errors import ValidationError
from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.completion import GenerateCompletion, answer_budget
from datamill.steps.dedup import normalize_text
from datamill.steps.gather import gather_or_cancel
from datamill.steps.images import row_images
from datamill.steps.injection import Finding, chat_checked, injection_reason
from datamill.steps.judging import Comparison, PairwiseJudge
from datamill.steps.metadata_injection import pending_context, request_text
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: The ways a pair is made (module docstring).
MODES = ("candidates", "revision", "flaw")
#: Answers compared per row in ``candidates`` mode, the row's completion included.
DEFAULT_CANDIDATES = 3
MAX_CANDIDATES = 8
#: Smallest mean preference (−2..2) of chosen over rejected for a pair to be kept: "better" in both orders,
#: or "much better" in one and a tie in the other.
DEFAULT_MIN_MARGIN = 1.0
#: Typical length of one pairwise verdict in tokens (reasoning, then the verdict), for estimates only.
JUDGE_EXPECTED_TOKENS = 150
COMPLETION = "completion"


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


#: The flaws a rejected answer may have in ``flaw`` mode, in a fixed order (the per-row choice indexes it).
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


def _row_hash(row: Row, seed: int, purpose: str) -> int:
    # Expanded rows share their source's ``_row``; ``_variant`` and their translated prompt tell them apart.
    parts = (seed, row.get("_row"), row.get("_variant") or 0, row.get("original_prompt") or "", purpose)
    key = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def choose_flaw(row: Row, seed: int = 0) -> Flaw:
    """The flaw of ``row``'s rejected answer in ``flaw`` mode: the same for the same row and seed."""
    return FLAWS[_row_hash(row, seed, "flaw") % len(FLAWS)]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One answer in the running: where it came from and its text."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class Ranked:
    """Every comparison of a row's candidates, and each candidate's rank score (its mean margin)."""

    candidates: tuple[Candidate, ...]
    comparisons: dict[tuple[int, int], Comparison]

    def score(self, index: int) -> float:
        margins = [
            (c.margin if i == index else -c.margin)
            for (i, j), c in self.comparisons.items()
            if index in (i, j)
        ]
        return sum(margins) / len(margins) if margins else 0.0

    def best_and_worst(self) -> tuple[int, int]:
        """The indexes of the best- and worst-ranked candidates (ties: the earlier candidate)."""
        order = sorted(range(len(self.candidates)), key=lambda i: (-self.score(i), i))
        return order[0], order[-1]

    def between(self, x: int, y: int) -> Comparison:
        """The comparison of candidate ``x`` against ``y``, seen from ``x``."""
        if (x, y) in self.comparisons:
            return self.comparisons[(x, y)]
        return self.comparisons[(y, x)].flipped()

    def records(self) -> list[dict[str, Any]]:
        out = []
        for (i, j), comparison in self.comparisons.items():
            record = {"x": self.candidates[i].source, "y": self.candidates[j].source}
            out.append(record | comparison.to_dict())
        return out


class PreferencePairs(RowStep):
    """Writes a chosen and a rejected answer per row, kept only with a consistent margin (module doc).

    Args:
        model: writes candidate answers, revisions or flawed rewrites.
        judge: compares the answers; defaults to ``model``.
        blueprint: the run's style guide (answers are written and judged against it), or None.
        token_range: the run's length target (answers are written and judged against it), or None.
        seed: varies the samples and the flaw choice between runs.
        temperature: sampling temperature of the generated answers.
        mode: ``candidates``, ``revision`` or ``flaw``.
        candidates: answers compared per row in ``candidates`` mode, the completion included (2–8).
        candidate_models: further models that each write one candidate.
        min_margin: smallest mean preference (0–2) of chosen over rejected for a pair to be kept.
    """

    name: ClassVar[str] = "preference_pairs"
    model: ModelHandle
    input_columns = (
        "enhanced_prompt",
        "original_prompt",
        "enhanced_completion",
        "_context",
        "_passages",
        "_row",
        "_images",
    )
    output_columns = (
        "chosen",
        "rejected",
        "pair_margin",
        "pair_method",
        "pair_judge_reason",
        "pair_comparisons",
        "rejected_flaw",
    )

    def __init__(
        self,
        model: ModelHandle,
        *,
        judge: ModelHandle | None = None,
        blueprint: str | None = None,
        token_range: tuple[int, int] | None = None,
        seed: int = 0,
        temperature: float = 0.8,
        mode: str = "candidates",
        candidates: int = DEFAULT_CANDIDATES,
        candidate_models: Sequence[ModelHandle] = (),
        min_margin: float = DEFAULT_MIN_MARGIN,
    ) -> None:
        if mode not in MODES:
            raise ValidationError.of("preference_mode", f"must be one of {', '.join(MODES)}; got {mode!r}")
        if not 2 <= candidates <= MAX_CANDIDATES:
            raise ValidationError.of(
                "preference_candidates", f"must be 2 to {MAX_CANDIDATES}; got {candidates!r}"
            )
        if not 0 <= min_margin <= 2:
            raise ValidationError.of("preference_min_margin", f"must be 0 to 2; got {min_margin!r}")
        self.model = model
        self.judge = judge or model
        self.mode = mode
        self.samples = candidates - 1 if mode == "candidates" else 0
        self.candidate_models = tuple(candidate_models) if mode == "candidates" else ()
        self.min_margin = min_margin
        self.blueprint = blueprint or ""
        self.seed = seed
        self.temperature = temperature
        self.pair_judge = PairwiseJudge(
            self.judge, tag=self.name, blueprint=blueprint, length_range=token_range, seed=seed
        )
        self.writer = GenerateCompletion(
            model, blueprint=blueprint, token_range=token_range, temperature=temperature, show_draft=False
        )
        self.rewrite_template = load_template("rejected_answer")
        self.revision_template = load_template("pair_revision")
        # A padded or revised answer needs room beyond the length target.
        self.max_tokens = int(token_range[1] * 1.5) + 16 if token_range else answer_budget(None)[0]
        answer_tokens = answer_budget(token_range)[1]
        answers = self.samples + len(self.candidate_models) if mode == "candidates" else 1
        judgements = 2 * _pairs_of(1 + answers)
        self.expected_output_tokens = answers * answer_tokens + judgements * JUDGE_EXPECTED_TOKENS

    # ---- requests -----------------------------------------------------------------------------------------

    def sample_request(self, row: Row, sample: int) -> ChatRequest:
        """The request for the ``sample``-th extra candidate (its own seed, so no two share a cache entry)."""
        (request,) = self.writer.requests_for(row)
        return ChatRequest(
            request.messages,
            max_tokens=request.max_tokens,
            temperature=self.temperature,
            seed=self.seed * 1000 + sample + 1,
        )

    def rewrite_request(self, row: Row, answer: str, flaw: Flaw) -> ChatRequest:
        """The request for the flawed rewrite of ``answer`` (``flaw`` mode)."""
        messages = self.rewrite_template.render(
            prompt=request_text(row),
            context=pending_context(row),
            chosen=answer,
            blueprint=self.blueprint,
            flaw=flaw.describe(bool(self.blueprint)),
        )
        messages = with_images(messages, row_images(row))
        return ChatRequest(messages, max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed)

    def revision_request(self, row: Row, answer: str) -> ChatRequest:
        """The request for the minimal revision of ``answer`` (``revision`` mode)."""
        messages = self.revision_template.render(
            prompt=request_text(row), context=pending_context(row), answer=answer, blueprint=self.blueprint
        )
        messages = with_images(messages, row_images(row))
        return ChatRequest(messages, max_tokens=self.max_tokens, temperature=0.0, seed=self.seed)

    def judge_requests(self, row: Row, x: str, y: str) -> tuple[ChatRequest, ChatRequest]:
        """The judge's two requests comparing ``x`` and ``y`` (``x`` shown first, then ``y``)."""
        return self.pair_judge.requests(request_text(row), pending_context(row), x, y, row_images(row))

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """One row's generation and judge requests (the completion stands in for unwritten answers)."""
        answer = _completion(row)
        if self.mode == "flaw":
            generated = [self.rewrite_request(row, answer, choose_flaw(row, self.seed))]
        elif self.mode == "revision":
            generated = [self.revision_request(row, answer)]
        else:
            generated = [self.sample_request(row, i) for i in range(self.samples)]
            generated += [self.sample_request(row, 0) for _ in self.candidate_models]
        judged = 2 * _pairs_of(1 + len(generated))
        return [*generated, *(self.judge_requests(row, answer, answer)[0] for _ in range(judged))]

    # ---- the step -----------------------------------------------------------------------------------------

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        completion = _completion(row)
        if not completion:
            raise RowRejected(f"{self.name}: the row has no completion to start the pair from")
        flaw: Flaw | None = None
        method = self.mode
        if self.mode == "flaw":
            flaw = choose_flaw(row, self.seed)
            rejected = await self._written(row, self.rewrite_request(row, completion, flaw), "flawed rewrite")
            pool = [Candidate(COMPLETION, completion), Candidate(f"flaw:{flaw.key}", rejected)]
        elif self.mode == "revision":
            pool = await self._revision_pool(row, completion)
        else:
            samples, dropped = await self._samples(row)
            pool = _distinct([Candidate(COMPLETION, completion), *samples])
            if len(pool) < 2 and dropped:
                raise RowRejected(injection_reason(self.name, dropped[0]))
            if len(pool) < 2:
                # A model that samples deterministically gives nothing to rank: revise the answer instead.
                method = "revision"
                pool = await self._revision_pool(row, completion)
        ranked = await self._rank(row, _distinct(pool), method)
        chosen, rejected_index = (0, 1) if method != "candidates" else ranked.best_and_worst()
        comparison = ranked.between(chosen, rejected_index)
        self._check(comparison, ranked, chosen, rejected_index)
        row["chosen"] = ranked.candidates[chosen].text
        row["rejected"] = ranked.candidates[rejected_index].text
        row["pair_margin"] = comparison.margin
        row["pair_method"] = method
        row["pair_judge_reason"] = comparison.x_first.rationale
        row["pair_comparisons"] = ranked.records()
        row["rejected_flaw"] = flaw.key if flaw is not None else None

    def _check(self, comparison: Comparison, ranked: Ranked, chosen: int, rejected: int) -> None:
        names = f"{ranked.candidates[chosen].source} over {ranked.candidates[rejected].source}"
        if not comparison.consistent:
            first, second = comparison.x_first.verdict, comparison.y_first.verdict
            raise RowRejected(
                f"{self.name}: inconsistent judgement of {names}: the verdict followed the order shown "
                f"({first} with {ranked.candidates[chosen].source} first, {second} with it second)"
            )
        if comparison.margin < self.min_margin:
            raise RowRejected(
                f"{self.name}: margin {comparison.margin:g} of {names} is below the minimum "
                f"{self.min_margin:g}: {comparison.x_first.rationale}"
            )

    async def _samples(self, row: Row) -> tuple[list[Candidate], list[Finding]]:
        """The sampled candidates that came back clean, and the injection findings of those dropped."""
        requests = [(f"sample {i + 1}", self.model, self.sample_request(row, i)) for i in range(self.samples)]
        requests += [(f"model:{m.name}", m, self.sample_request(row, 0)) for m in self.candidate_models]
        checked = await gather_or_cancel([chat_checked(m, r, tag=self.name) for _, m, r in requests])
        kept = [
            Candidate(source, c.text)
            for (source, _, _), c in zip(requests, checked, strict=True)
            if c.finding is None and c.text
        ]
        return kept, [c.finding for c in checked if c.finding is not None]

    async def _written(self, row: Row, request: ChatRequest, what: str) -> str:
        checked = await chat_checked(self.model, request, tag=self.name)
        if checked.finding is not None:
            raise RowRejected(injection_reason(self.name, checked.finding))
        if not checked.text:
            raise RowRejected(f"{self.name}: the {what} came back empty")
        return checked.text

    async def _revision_pool(self, row: Row, completion: str) -> list[Candidate]:
        revised = await self._written(row, self.revision_request(row, completion), "revision")
        return [Candidate("revision", revised), Candidate(COMPLETION, completion)]

    async def _rank(self, row: Row, pool: list[Candidate], method: str) -> Ranked:
        if len(pool) < 2:
            what = {"candidates": "candidate answers were", "revision": "revision was"}.get(
                method, "flawed rewrite was"
            )
            raise RowRejected(
                f"{self.name}: the {what} the same as the completion; there is nothing to compare"
            )
        pairs = list(itertools.combinations(range(len(pool)), 2))
        prompt, context, images = request_text(row), pending_context(row), row_images(row)
        results = await gather_or_cancel(
            [self.pair_judge.compare(prompt, context, pool[i].text, pool[j].text, images) for i, j in pairs]
        )
        return Ranked(tuple(pool), dict(zip(pairs, results, strict=True)))


def _completion(row: Row) -> str:
    return str(row.get("enhanced_completion") or row.get("original_completion") or "").strip()


def _distinct(pool: list[Candidate]) -> list[Candidate]:
    """The candidates without repeats (equal after normalisation), first occurrence kept."""
    seen: set[str] = set()
    out = []
    for candidate in pool:
        key = normalize_text(candidate.text)
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out


def _pairs_of(count: int) -> int:
    return count * (count - 1) // 2
