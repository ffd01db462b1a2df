"""Citation check on a scripted judge: an unsupported citation is removed, a supported one kept."""

from __future__ import annotations

import json
import re

from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import StepContext
from datamill.steps.citations import CitationCheck, claims_of, without_citations

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


def _judge(unsupported: set[str]):
    """Supports every claim except those whose sentence contains one of ``unsupported``."""

    def respond(route: Route, request: ChatRequest) -> str:
        claims = re.findall(r"^Claim (\d+) \(cites \[(\d+)\]\): (.*)$", request.messages[-1].content, re.M)
        checks = []
        for number, _, sentence in claims:
            bad = any(word in sentence for word in unsupported)
            reason = "the passage says nothing about this" if bad else "the passage says so"
            checks.append({"id": int(number), "reason": reason, "supported": not bad})
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
        lambda route, request: json.dumps({"checks": [{"id": 1, "reason": "ok", "supported": True}] * 3})
    )
    row = {"enhanced_completion": ANSWER, "_passages": PASSAGES}
    await step.process_row(row, StepContext())
    assert [c["n"] for c in row["removed_citations"]] == [2, 2]
    assert {c["reason"] for c in row["removed_citations"]} == {"the judge gave no verdict"}
    await gateway.aclose()


def test_claims_and_marker_removal():
    answer = "It works [1][2]. Also this. [1, 2]\nDone [3]"
    claims = claims_of(answer)
    assert [(c.n, c.sentence) for c in claims] == [
        (1, "It works."),
        (2, "It works."),
        (1, "Also this."),
        (2, "Also this."),
        (3, "Done"),
    ]
    removed = {(claims[0].span, 2), (claims[2].span, 1), (claims[4].span, 3)}
    assert without_citations(answer, removed) == "It works [1]. Also this. [2]\nDone"
