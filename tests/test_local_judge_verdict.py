"""The bundled model gives the quality judge a verdict: its rationale ends within the grammar's bound.

Runs the real SmolLM2 through the gateway, as the evaluation does. Without the bound the model keeps
reasoning until the call's token limit and its reply is cut before the scores (no verdict, no grade).
"""

from __future__ import annotations

import pytest

from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.evaluation_judge import JUDGE_MAX_TOKENS, QualityJudge
from datamill.pipelines.evaluation_rubric import CRITERIA
from datamill.pipelines.evaluation_sample import SideText
from datamill.steps.judging import RATIONALE_MAX_CHARS, SCALE_MAX, SCALE_MIN

pytest.importorskip("llama_cpp", reason="the bundled model needs the 'local' extra (make install)")

SIDE = SideText(
    prompt="How do I reset my router's admin password?",
    answer="Hold the reset button on the back for ten seconds, then sign in with the password on the label.",
)


@pytest.mark.local_model
async def test_the_bundled_judge_scores_every_criterion_after_a_bounded_rationale() -> None:
    async with Gateway(Routing.load()) as gateway:
        judge = QualityJudge(gateway.model("local/smollm2-135m-instruct"))
        judgement = await judge.judge(SIDE, "product: Router X200")
        calls, used = gateway.usage.total.calls, gateway.usage.total.usage.output_tokens

    assert judgement.error is None, judgement.error
    assert judgement.scores is not None
    assert set(judgement.scores) == set(CRITERIA)
    assert all(SCALE_MIN <= level <= SCALE_MAX for level in judgement.scores.values())
    assert judgement.score is not None
    assert 0 < len(judgement.rationale) <= RATIONALE_MAX_CHARS
    assert calls == 1  # no repair call
    assert used < JUDGE_MAX_TOKENS  # ended by the grammar, not by the token limit
