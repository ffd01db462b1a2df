"""Citation check: each cited sentence of a grounded answer is checked against the passage it cites.

Runs right after completion generation when grounding is on. The completion prompt asks the model to cite the
numbered passages it used as [1], [2]; a model cites what it was shown whether or not the passage says what
the sentence says, so each citation is verified, the way ALCE scores citations (Gao et al., 2023: a citation
counts when its passage entails the sentence, checked there with an NLI model):

1. The answer is cut into sentences; a sentence's citations are the ``[n]`` / ``[n, m]`` markers in it or
   right after its final punctuation. Each (sentence, cited passage) pair is one *claim*.
2. A citation of a number the row has no passage for is removed without a model call.
3. The other claims go to the run's judge model in one call per answer (``citation_check.yaml``, temperature
   0): for each claim, a reason and then whether the passage supports *everything* the sentence states. The
   reply is JSON under a schema with one check per claim; a claim the judge leaves out counts as unsupported,
   so no citation is kept on an unread verdict.
4. Every unsupported citation is taken out of the answer (``[1][2]`` becomes ``[1]``, ``[1, 2]`` becomes
   ``[2]``), and ``removed_citations`` lists what was removed: ``[{"n", "sentence", "reason"}]``. The sentence
   stays, uncited: it may be true, but the sources do not show it. `CitationCounts` tallies the claims checked
   and removed for the run.

A row without citations makes no call. With an image column the judge sees text only: the passages are text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.completion import row_passages
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Output tokens of one check (a short reason and the verdict), for the cap and the estimate.
TOKENS_PER_CHECK = 60
#: Most claims checked per answer (an answer citing more is checked on its first claims; the rest removed).
MAX_CLAIMS = 24

_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# A sentence: text up to its final punctuation, with the citation markers that follow it.
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)(?:[ \t]*\[\d+(?:\s*,\s*\d+)*\])*", re.MULTILINE)


@dataclass
class CitationCounts:
    """Claims (sentence, cited passage) checked and citations removed over a run."""

    checked: int = 0
    removed: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """One cited sentence and one passage number it cites; ``span`` locates the sentence in the answer."""

    id: int
    n: int
    sentence: str
    span: tuple[int, int]


def claims_of(answer: str) -> list[Claim]:
    """The (sentence, cited number) pairs of ``answer``, in order."""
    claims: list[Claim] = []
    for match in _SENTENCE.finditer(answer):
        sentence = match.group(0)
        numbers = [int(n) for marker in _MARKER.findall(sentence) for n in marker.split(",")]
        plain = re.sub(r"\s+([.!?,;:])", r"\1", " ".join(_MARKER.sub("", sentence).split()))
        for n in dict.fromkeys(numbers):
            claims.append(Claim(len(claims) + 1, n, plain, match.span()))
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
    """The reply's schema: exactly ``count`` checks, each an id, a reason and a verdict."""
    check = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "reason": {"type": "string"},
            "supported": {"type": "boolean"},
        },
        "required": ["id", "reason", "supported"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"checks": {"type": "array", "items": check, "minItems": count, "maxItems": count}},
        "required": ["checks"],
        "additionalProperties": False,
    }


class CitationCheck(RowStep):
    """Removes the citations of ``enhanced_completion`` that their passage does not support (module doc)."""

    name: ClassVar[str] = "citation_check"
    model: ModelHandle
    input_columns = ("enhanced_completion", "_passages")
    output_columns = ("enhanced_completion", "removed_citations")
    expected_output_tokens = 3 * TOKENS_PER_CHECK

    def __init__(self, judge: ModelHandle) -> None:
        self.model = judge
        self.template = load_template("citation_check")
        self.counts = CitationCounts()

    def request(self, passages: list[dict[str, Any]], claims: list[Claim]) -> ChatRequest:
        """The judge's request for ``claims`` against ``passages``."""
        cited = {c.n for c in claims}
        shown = [p for p in passages if p["n"] in cited]
        messages = self.template.render(
            passages=shown, claims=[{"id": c.id, "n": c.n, "sentence": c.sentence} for c in claims]
        )
        return ChatRequest(
            messages,
            max_tokens=64 + TOKENS_PER_CHECK * len(claims),
            temperature=0.0,
            json_schema=check_schema(len(claims)),
        )

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The check of the row's answer (the original answer stands in before completion has run)."""
        answer = str(row.get("enhanced_completion") or row.get("original_completion") or "")
        passages = row_passages(row)
        numbers = {p["n"] for p in passages}
        claims = [c for c in claims_of(answer) if c.n in numbers][:MAX_CLAIMS]
        return [self.request(passages, claims)] if claims else []

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        answer = str(row.get("enhanced_completion") or "")
        passages = row_passages(row)
        numbers = {p["n"] for p in passages}
        claims = claims_of(answer)
        removed: list[tuple[Claim, str]] = [
            (c, "cites no source passage") for c in claims if c.n not in numbers
        ]
        checkable = [c for c in claims if c.n in numbers]
        removed += [(c, "not checked: too many citations") for c in checkable[MAX_CLAIMS:]]
        checkable = checkable[:MAX_CLAIMS]
        if checkable:
            result = await self.model.chat(self.request(passages, checkable), tag=self.name)
            data = result.data if isinstance(result.data, dict) else {}
            verdicts = {
                item.get("id"): item
                for item in data.get("checks") or []
                if isinstance(item, dict) and isinstance(item.get("id"), int)
            }
            for claim in checkable:
                verdict = verdicts.get(claim.id, {})
                if verdict.get("supported") is not True:
                    reason = str(verdict.get("reason") or "").strip() or "the judge gave no verdict"
                    removed.append((claim, reason))
        self.counts.checked += len(claims)
        self.counts.removed += len(removed)
        row["removed_citations"] = [{"n": c.n, "sentence": c.sentence, "reason": r} for c, r in removed]
        if removed:
            row["enhanced_completion"] = without_citations(answer, {(c.span, c.n) for c, _ in removed})
