"""Citation check: each cited sentence of a grounded answer is checked against the passages it cites.

Runs right after completion generation when grounding is on. The completion prompt asks the model to cite the
numbered passages it used as [1], [2]; a model cites what it was shown whether or not the passages say what
the sentence says, so each citation is verified, the way ALCE scores citations (Gao et al., 2023, with an NLI
model there and the run's judge here):

- **citation recall**, per sentence: the sentence is supported when its cited passages, *read together*,
  entail it (ALCE concatenates them), so a sentence that needs two passages keeps both citations;
- **citation precision**, per citation: a citation of a supported sentence is *irrelevant* when its passage
  alone does not support the sentence and the sentence's other cited passages support it without it; every
  other citation of a supported sentence is precise. A citation of an unsupported sentence is not precise.

The steps:

1. The answer is cut into sentences; a sentence's citations are the ``[n]`` / ``[n, m]`` markers in it or
   right after its final punctuation. Each cited sentence is one *claim*.
2. A citation of a number the row has no passage for is removed without a model call.
3. The claims go to the run's judge model in one call per answer (``citation_check.yaml``, temperature 0):
   for each claim, a reason first, then ``supported`` (the cited passages together support *everything* the
   sentence states), then for each cited passage ``alone`` (it supports the sentence by itself) and ``rest``
   (the sentence's other cited passages support it without this one). The reply is JSON under a schema with
   one check per claim; a claim the judge leaves out counts as unsupported, so no citation is kept on an
   unread verdict.
4. An unsupported sentence loses all its citations; a supported one loses its irrelevant citations, except
   when more than one is irrelevant and no citation kept supports the sentence alone (which of them the
   sentence needs cannot then be told from the verdict, so all stay). Citations are taken out of the answer
   (``[1][2]`` becomes ``[1]``, ``[1, 2]`` becomes ``[2]``), and ``removed_citations`` lists what was
   removed: ``[{"n", "sentence", "reason"}]``. The sentence stays: it may be true, but the sources do not
   show it. `CitationCounts` tallies the step's citation recall and precision, and each row keeps its own
   tally in the internal ``_citation_tally`` column (`TALLY_COLUMN`), which the checkpoint saves so a run's
   report can add them up over its delivered rows, wherever and in how many attempts they were made.

A row without citations makes no call. With an image column the judge sees text only: the passages are text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.completion import row_passages
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Output tokens of one check (a reason and the verdicts) and per cited passage, for the cap and the estimate.
TOKENS_PER_CHECK = 60
TOKENS_PER_PASSAGE = 20
#: Most cited sentences checked per answer (an answer citing more is checked on its first; the rest removed).
MAX_CLAIMS = 24
#: Why a citation of a supported sentence is removed as irrelevant (ALCE's precision).
IRRELEVANT = "not needed: its passage does not support the sentence alone, and the other cited passages do"

#: Internal column with one row's `CitationCounts` fields; kept in the checkpoint, never in the output.
TALLY_COLUMN = "_citation_tally"

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# A sentence: text up to its final punctuation, with the citation markers that follow it.
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)(?:[ \t]*\[\d+(?:\s*,\s*\d+)*\])*", re.MULTILINE)


@dataclass
class CitationCounts:
    """Citations and cited sentences checked over a run, with ALCE's recall and precision.

    Attributes:
        checked: citations seen (those of no passage included).
        removed: citations removed.
        sentences: cited sentences judged.
        supported: judged sentences whose cited passages together support them (recall's numerator).
        judged: citations of judged sentences (precision's denominator).
        precise: citations of supported sentences that were not irrelevant (precision's numerator).
    """

    checked: int = 0
    removed: int = 0
    sentences: int = 0
    supported: int = 0
    judged: int = 0
    precise: int = 0

    def add(self, other: CitationCounts) -> None:
        """Add ``other``'s tallies to these."""
        for name in FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def recall(self) -> float | None:
        """ALCE's citation recall: the share of judged sentences their citations support."""
        return self.supported / self.sentences if self.sentences else None

    @property
    def precision(self) -> float | None:
        """ALCE's citation precision: the share of judged citations that are precise."""
        return self.precise / self.judged if self.judged else None


#: The tallies of `CitationCounts`, as a row's ``_citation_tally`` holds them.
FIELDS = ("checked", "removed", "sentences", "supported", "judged", "precise")


@dataclass(frozen=True, slots=True)
class Claim:
    """One cited sentence and the passage numbers it cites; ``span`` locates the sentence in the answer."""

    id: int
    numbers: tuple[int, ...]
    sentence: str
    span: tuple[int, int]


def claims_of(answer: str) -> list[Claim]:
    """The cited sentences of ``answer``, in order, each with its citation numbers (first mention order)."""
    claims: list[Claim] = []
    for match in _SENTENCE.finditer(answer):
        sentence = match.group(0)
        numbers = [int(n) for marker in _MARKER.findall(sentence) for n in marker.split(",")]
        if not numbers:
            continue
        plain = re.sub(r"\s+([.!?,;:])", r"\1", " ".join(_MARKER.sub("", sentence).split()))
        claims.append(Claim(len(claims) + 1, tuple(dict.fromkeys(numbers)), plain, match.span()))
    return claims


def without_citations(answer: str, removed: set[tuple[tuple[int, int], int]]) -> str:
    """``answer`` with each (sentence span, number) of ``removed`` taken out of that sentence's markers."""
    spans = sorted({span for span, _ in removed}, reverse=True)
    for span in spans:
        numbers = {n for s, n in removed if s == span}
        start, end = span

        def keep(marker: re.Match[str], numbers: set[int] = numbers) -> str:
            kept = [part.strip() for part in marker.group(1).split(",") if int(part) not in numbers]
            return f"[{', '.join(kept)}]" if kept else ""

        sentence = _MARKER.sub(keep, answer[start:end])
        sentence = re.sub(r"[ \t]+([.!?,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", sentence)).rstrip(" \t")
        answer = answer[:start] + sentence + answer[end:]
    return answer


def check_schema(count: int) -> dict[str, Any]:
    """The reply's schema: exactly ``count`` checks, each an id, a reason, the verdict and one per passage."""
    passage = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "alone": {"type": "boolean"}, "rest": {"type": "boolean"}},
        "required": ["n", "alone", "rest"],
        "additionalProperties": False,
    }
    check = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "reason": {"type": "string"},
            "supported": {"type": "boolean"},
            "passages": {"type": "array", "items": passage},
        },
        "required": ["id", "reason", "supported", "passages"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"checks": {"type": "array", "items": check, "minItems": count, "maxItems": count}},
        "required": ["checks"],
        "additionalProperties": False,
    }


def judged_removals(claim: Claim, verdict: dict[str, Any]) -> tuple[list[tuple[int, str]], bool, int]:
    """What ``verdict`` means for ``claim``: the citations to remove, support, and precise citations.

    Returns the (number, reason) pairs to remove, whether the cited passages together support the sentence,
    and how many of its citations are precise (module docstring, step 4).
    """
    if verdict.get("supported") is not True:
        reason = str(verdict.get("reason") or "").strip() or "the judge gave no verdict"
        return [(n, reason) for n in claim.numbers], False, 0
    if len(claim.numbers) == 1:
        return [], True, 1
    per_passage = {item.get("n"): item for item in verdict.get("passages") or [] if isinstance(item, dict)}
    alone = {n: per_passage.get(n, {}).get("alone") is True for n in claim.numbers}
    irrelevant = [n for n in claim.numbers if not alone[n] and per_passage.get(n, {}).get("rest") is True]
    kept = [n for n in claim.numbers if n not in irrelevant]
    precise = len(claim.numbers) - len(irrelevant)
    if len(irrelevant) > 1 and not any(alone[n] for n in kept):
        return [], True, precise  # which of them the sentence needs is unknown: all stay
    return [(n, IRRELEVANT) for n in irrelevant], True, precise


class CitationCheck(RowStep):
    """Removes the citations of ``enhanced_completion`` that their passage does not support (module doc)."""

    name: ClassVar[str] = "citation_check"
    model: ModelHandle
    input_columns = ("enhanced_completion", "_passages")
    output_columns = ("enhanced_completion", "removed_citations", TALLY_COLUMN)
    expected_output_tokens = 3 * TOKENS_PER_CHECK

    def __init__(self, judge: ModelHandle) -> None:
        self.model = judge
        self.template = load_template("citation_check")
        self.counts = CitationCounts()

    def request(self, passages: list[dict[str, Any]], claims: list[Claim]) -> ChatRequest:
        """The judge's request for ``claims`` against ``passages``."""
        cited = {n for c in claims for n in c.numbers}
        shown = [p for p in passages if p["n"] in cited]
        messages = self.template.render(
            passages=shown,
            claims=[
                {"id": c.id, "numbers": ", ".join(map(str, c.numbers)), "sentence": c.sentence}
                for c in claims
            ],
        )
        cost = sum(TOKENS_PER_CHECK + TOKENS_PER_PASSAGE * len(c.numbers) for c in claims)
        return ChatRequest(
            messages, max_tokens=64 + cost, temperature=0.0, json_schema=check_schema(len(claims))
        )

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The check of the row's answer (the original answer stands in before completion has run)."""
        answer = str(row.get("enhanced_completion") or row.get("original_completion") or "")
        numbers = {p["n"] for p in row_passages(row)}
        claims = [c for c in (_checkable(c, numbers) for c in claims_of(answer)) if c is not None]
        return [self.request(row_passages(row), claims[:MAX_CLAIMS])] if claims else []

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        answer = str(row.get("enhanced_completion") or "")
        passages = row_passages(row)
        numbers = {p["n"] for p in passages}
        claims = claims_of(answer)
        removed: list[tuple[Claim, int, str]] = [
            (c, n, "cites no source passage") for c in claims for n in c.numbers if n not in numbers
        ]
        checkable = [k for k in (_checkable(c, numbers) for c in claims) if k is not None]
        removed += [
            (c, n, "not checked: too many citations") for c in checkable[MAX_CLAIMS:] for n in c.numbers
        ]
        checkable = checkable[:MAX_CLAIMS]
        tally = CitationCounts()
        if checkable:
            result = await self.model.chat(self.request(passages, checkable), tag=self.name)
            data = result.data if isinstance(result.data, dict) else {}
            verdicts = {
                item.get("id"): item
                for item in data.get("checks") or []
                if isinstance(item, dict) and isinstance(item.get("id"), int)
            }
            for claim in checkable:
                dropped, supported, precise = judged_removals(claim, verdicts.get(claim.id, {}))
                removed += [(claim, n, reason) for n, reason in dropped]
                tally.sentences += 1
                tally.supported += supported
                tally.judged += len(claim.numbers)
                tally.precise += precise
        tally.checked = sum(len(c.numbers) for c in claims)
        tally.removed = len(removed)
        self.counts.add(tally)
        row[TALLY_COLUMN] = {name: getattr(tally, name) for name in FIELDS}
        order = {(c.span, n): i for i, c in enumerate(claims) for n in c.numbers}
        removed.sort(key=lambda item: order[(item[0].span, item[1])])
        row["removed_citations"] = [{"n": n, "sentence": c.sentence, "reason": r} for c, n, r in removed]
        if removed:
            row["enhanced_completion"] = without_citations(answer, {(c.span, n) for c, n, _ in removed})


def _checkable(claim: Claim, numbers: set[int]) -> Claim | None:
    """``claim`` with only the citations of passages the row has; None when it has none."""
    kept = tuple(n for n in claim.numbers if n in numbers)
    return replace(claim, numbers=kept) if kept else None
