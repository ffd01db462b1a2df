"""Citation check on a scripted judge, scored as ALCE scores citations.

An unsupported citation is removed and a supported one kept; a sentence supported only by two passages
together keeps both citations (recall on the cited passages read together); a citation the sentence does not
need is removed (precision per citation); the run's recall and precision are counted.
"""

from __future__ import annotations

import json
import re

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.citations import IRRELEVANT, CitationCheck, claims_of, judged_removals, without_citations

PASSAGES = [
    {"n": 1, "source": "kb/reset.md", "text": "Open Settings, choose Security, then click Forgot password."},
    {
        "n": 2,
        "source": "kb/sso.md",
        "text": "Accounts that sign in with SSO reset passwords with their provider.",
    },
]
ANSWER = (
    "Open Settings, choose Security and click Forgot password [1]. "
    "The reset link expires after 24 hours [2]. "
    "SSO accounts reset it with their identity provider [2]."
)


_CLAIM = re.compile(r"^Claim (\d+) \(cites \[([\d, ]+)\]\): (.*)$", re.M)


def _judge(unsupported: set[str]):
    """Supports every claim except those whose sentence contains one of ``unsupported``."""

    def respond(route: Route, request: ChatRequest) -> str:
        checks = []
        for number, cited, sentence in _CLAIM.findall(request.messages[-1].content):
            bad = any(word in sentence for word in unsupported)
            reason = "the passage says nothing about this" if bad else "the passage says so"
            passages = [{"n": int(n), "alone": not bad, "rest": False} for n in cited.split(",")]
            checks.append({"id": int(number), "reason": reason, "supported": not bad, "passages": passages})
        return json.dumps({"checks": checks})

    return respond


def _entailment_judge(facts: dict[int, set[str]]):
    """A judge that reads each passage as a set of facts and each sentence as the facts it states: the
    passages read together support the sentence when their facts cover the sentence's, as an NLI model on the
    concatenated passages would find (ALCE)."""

    def stated(sentence: str) -> set[str]:
        return {fact for known in facts.values() for fact in known if fact in sentence}

    def covers(numbers: list[int], sentence: str) -> bool:
        given = set().union(*(facts[n] for n in numbers)) if numbers else set()
        return stated(sentence) <= given

    def respond(route: Route, request: ChatRequest) -> str:
        checks = []
        for number, cited, sentence in _CLAIM.findall(request.messages[-1].content):
            numbers = [int(n) for n in cited.split(",")]
            passages = [
                {
                    "n": n,
                    "alone": covers([n], sentence),
                    "rest": covers([m for m in numbers if m != n], sentence),
                }
                for n in numbers
            ]
            together = covers(numbers, sentence)
            reason = "the passages give it" if together else "the passages do not give all of it"
            checks.append({"id": int(number), "reason": reason, "supported": together, "passages": passages})
        return json.dumps({"checks": checks})

    return respond


def _step(responder) -> tuple[CitationCheck, FakeProvider, Gateway]:
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    return CitationCheck(gateway.model("fake/judge")), fake, gateway


async def test_an_unsupported_citation_is_removed_and_a_supported_one_kept():
    step, fake, gateway = _step(_judge({"24 hours"}))
    row = {"enhanced_completion": ANSWER, "_passages": PASSAGES}
    await step.process_row(row, StepContext())
    assert row["enhanced_completion"] == (
        "Open Settings, choose Security and click Forgot password [1]. "
        "The reset link expires after 24 hours. "
        "SSO accounts reset it with their identity provider [2]."
    )
    assert row["removed_citations"] == [
        {
            "n": 2,
            "sentence": "The reset link expires after 24 hours.",
            "reason": "the passage says nothing about this",
        }
    ]
    (request,) = fake.calls
    assert request.temperature == 0.0
    shown = request.messages[-1].content
    assert PASSAGES[0]["text"] in shown
    assert "Claim 2 (cites [2]): The reset link expires after 24 hours." in shown
    assert (step.counts.checked, step.counts.removed) == (3, 1)
    assert step.counts.recall == 2 / 3
    assert step.counts.precision == 2 / 3
    await gateway.aclose()


async def test_a_citation_of_no_passage_goes_without_a_call_and_a_row_without_citations_makes_none():
    step, fake, gateway = _step(_judge(set()))
    row = {"enhanced_completion": "Click Forgot password [7].", "_passages": PASSAGES}
    await step.process_row(row, StepContext())
    assert row["enhanced_completion"] == "Click Forgot password."
    assert row["removed_citations"][0]["reason"] == "cites no source passage"
    plain = {"enhanced_completion": "Click Forgot password.", "_passages": PASSAGES}
    await step.process_row(plain, StepContext())
    assert plain["removed_citations"] == []
    assert fake.calls == []
    assert step.requests_for(plain) == []
    await gateway.aclose()


async def test_a_claim_the_judge_leaves_out_counts_as_unsupported():
    step, _, gateway = _step(
        lambda route, request: json.dumps(
            {"checks": [{"id": 1, "reason": "ok", "supported": True, "passages": []}] * 3}
        )
    )
    row = {"enhanced_completion": ANSWER, "_passages": PASSAGES}
    await step.process_row(row, StepContext())
    assert [c["n"] for c in row["removed_citations"]] == [2, 2]
    assert {c["reason"] for c in row["removed_citations"]} == {"the judge gave no verdict"}
    await gateway.aclose()


PLAN = [
    {"n": 1, "source": "kb/plans.md", "text": "The Team plan costs 12 dollars a month."},
    {"n": 2, "source": "kb/seats.md", "text": "Every plan includes 5 seats."},
    {"n": 3, "source": "kb/about.md", "text": "The company was founded in Oslo."},
]
#: The facts each passage gives; 0 holds facts an answer may state that no passage gives.
FACTS = {0: {"Paris"}, 1: {"Team plan", "12 dollars"}, 2: {"5 seats"}, 3: {"Oslo"}}


async def test_a_sentence_supported_only_by_two_passages_together_keeps_both_citations():
    step, fake, gateway = _step(_entailment_judge(FACTS))
    answer = "The Team plan costs 12 dollars and has 5 seats [1][2]. It has 5 seats [2]."
    row = {"enhanced_completion": answer, "_passages": PLAN}
    await step.process_row(row, StepContext())
    # Neither passage alone gives price and seats; together they do, so neither citation is removed.
    assert row["enhanced_completion"] == answer
    assert row["removed_citations"] == []
    assert "Claim 1 (cites [1, 2]): The Team plan costs 12 dollars and has 5 seats." in (
        fake.calls[0].messages[-1].content
    )
    assert (step.counts.recall, step.counts.precision) == (1.0, 1.0)
    await gateway.aclose()


async def test_a_citation_the_sentence_does_not_need_is_removed_as_imprecise():
    step, _, gateway = _step(_entailment_judge(FACTS))
    answer = "The Team plan costs 12 dollars [1][3]. It has 5 seats and an office in Paris [2][3]."
    row = {"enhanced_completion": answer, "_passages": PLAN}
    await step.process_row(row, StepContext())
    # [3] adds nothing to the first sentence, which [1] supports alone: removed (ALCE's irrelevant citation).
    # The second sentence's passages together do not give "Paris": both citations go (recall 0).
    assert (
        row["enhanced_completion"]
        == "The Team plan costs 12 dollars [1]. It has 5 seats and an office in Paris."
    )
    assert [(c["n"], c["reason"]) for c in row["removed_citations"]] == [
        (3, IRRELEVANT),
        (2, "the passages do not give all of it"),
        (3, "the passages do not give all of it"),
    ]
    assert step.counts.recall == 0.5
    assert (
        step.counts.precision == 1 / 4
    )  # [1] precise; [3] irrelevant; [2] and [3] of an unsupported sentence
    await gateway.aclose()


def test_when_several_citations_look_needless_and_none_kept_suffices_alone_all_stay():
    claim = claims_of("Price and seats [1][2][3].")[0]
    verdict = {
        "supported": True,
        "passages": [
            {"n": 1, "alone": False, "rest": True},
            {"n": 2, "alone": False, "rest": True},
            {"n": 3, "alone": False, "rest": False},
        ],
    }
    # [1] and [2] each look needless given the others, but removing both would leave [3], which cannot
    # support the sentence alone: which one it needs is unknown, so nothing is removed.
    assert judged_removals(claim, verdict) == ([], True, 1)
    verdict["passages"][2]["alone"] = True
    assert judged_removals(claim, verdict) == ([(1, IRRELEVANT), (2, IRRELEVANT)], True, 1)


def test_claims_and_marker_removal():
    answer = "It works [1][2]. Also this. [1, 2]\nDone [3]"
    claims = claims_of(answer)
    assert [(c.numbers, c.sentence) for c in claims] == [
        ((1, 2), "It works."),
        ((1, 2), "Also this."),
        ((3,), "Done"),
    ]
    removed = {(claims[0].span, 2), (claims[1].span, 1), (claims[2].span, 3)}
    assert without_citations(answer, removed) == "It works [1]. Also this. [2]\nDone"


async def test_each_row_keeps_its_tally_and_the_run_report_adds_them_over_the_saved_batches(tmp_path):
    from datamill.pipelines.adapt import saved_row
    from datamill.pipelines.checkpoint import Checkpoint
    from datamill.pipelines.grounding_report import grounding_report
    from datamill.steps.citations import TALLY_COLUMN

    step, _, gateway = _step(_entailment_judge(FACTS))
    first = {"_row": 1, "grounded": True, "_passages": PLAN}
    first["enhanced_completion"] = "The Team plan costs 12 dollars [1][3]. It has 5 seats [2]."
    second = {"_row": 2, "grounded": True, "_passages": PLAN}
    second["enhanced_completion"] = "The company is in Paris [3]."
    for row in (first, second):
        await step.process_row(row, StepContext())
    await gateway.aclose()
    assert first[TALLY_COLUMN] == {
        "checked": 3, "removed": 1, "sentences": 2, "supported": 2, "judged": 3, "precise": 2
    }  # fmt: skip
    checkpoint = Checkpoint(tmp_path / "run", "fp")
    checkpoint.save(0, [saved_row(first)], [])
    checkpoint.save(1, [saved_row(second), saved_row({"_row": 3, "grounded": False})], [])
    assert TALLY_COLUMN not in next(checkpoint.iter_output()).column_names  # never in the output
    report = grounding_report(checkpoint)
    assert report is not None
    assert (report["rows_grounded"], report["rows_ungrounded"]) == (2, 1)
    citations = report["citations"]
    assert (citations["sentences"], citations["supported"]) == (3, 2)
    assert (citations["judged"], citations["precise"]) == (4, 2)
    assert (citations["recall"], citations["precision"]) == (2 / 3, 0.5)
    assert (citations["recall"], citations["precision"]) == (step.counts.recall, step.counts.precision)
    assert grounding_report(Checkpoint(tmp_path / "ungrounded", "fp")) is None
