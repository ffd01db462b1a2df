"""Every step's requests put a stable prefix first (instructions, few-shot turns, blueprint, rubric, seed
examples) and the row's own content after it, and mark where the prefix ends, so providers can cache it.

For each step, the requests for two different rows must share every message up to and including the one
marked `Message.cache_point`, and differ right after it (the mark is at the end of what rows share, not
earlier). On the wire, Anthropic's payloads for the two rows are equal up to the ``cache_control`` block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from datamill.core.expansion import parse_language_expansion
from datamill.core.generation_request import RevisionType
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.providers import anthropic
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.evaluation_judge import QualityJudge, StyleJudge
from datamill.pipelines.generation_eval import EvalSample, SampleClassifier
from datamill.services.datasets.custom_judge import RubricJudge
from datamill.steps.chat import ChatCompletion
from datamill.steps.completion import GenerateCompletion
from datamill.steps.expansion import LanguageExpansionStep
from datamill.steps.generation.calculator import CalculatorCheck
from datamill.steps.generation.gates import ConformanceGate
from datamill.steps.generation.reviser import SampleReviser
from datamill.steps.generation.sample import SampleTask, SeedPicker
from datamill.steps.generation.seeds import Seed, SeedSet
from datamill.steps.generation.writer import SampleWriter, WriterOptions
from datamill.steps.judging import PairwiseJudge
from datamill.steps.preference import PreferencePairs, choose_flaw
from datamill.steps.reasoning import ReasoningTraces
from datamill.steps.rephrase import Rephrase
from datamill.steps.safety import SafetyReview
from datamill.text.langid import FastLangDetector

BLUEPRINT = "Answer as a patient support engineer. Use short paragraphs and plain words. " * 4
ROWS = [
    {
        "_row": 1,
        "original_prompt": "how do i reset my password",
        "original_completion": "Open settings and choose reset.",
        "enhanced_completion": "Open Settings, then Security, then Reset password.",
        "_context": "product: Acme Cloud",
    },
    {
        "_row": 2,
        "original_prompt": "can i export contacts to csv",
        "original_completion": "Yes, from the contacts page.",
        "enhanced_completion": "Yes: open Contacts, choose Export and pick CSV.",
        "_context": "product: Acme CRM",
    },
]
SPEC = parse_spec_yaml(
    """
spec:
  description: A customer support email
  requirements: [Sign with a first name only, Mention one product]
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual]
    - property_name: Length
      property_values: [short, long]
"""
)
SEEDS = SeedSet(
    tuple(
        Seed(f"seed{i}.txt", f"Hello team, example email number {i} about an order. " * 8) for i in range(4)
    ),
    "SINGLE_FILE",
)
ROW_SEEDS = SeedSet(
    tuple(
        Seed(f"row{i}", f'{{"subject": "s{i}", "body": "b{i}"}}', {"subject": f"s{i}", "body": f"b{i}"})
        for i in range(3)
    ),
    "SINGLE_FILE",
)
TASKS = [
    SampleTask(slot=0, attempt=0, properties={"Tone": "formal", "Length": "short"}, spec=SPEC),
    SampleTask(slot=1, attempt=0, properties={"Tone": "casual", "Length": "long"}, spec=SPEC),
]


@pytest.fixture
async def model() -> AsyncIterator[ModelHandle]:
    gateway = Gateway(Routing.load())
    yield gateway.model("fake/prefix")
    await gateway.aclose()


def _pair(
    render: Callable[[Any], list[ChatRequest]], items: list[Any]
) -> list[tuple[ChatRequest, ChatRequest]]:
    first, second = (render(item) for item in items)
    assert len(first) == len(second) > 0
    return list(zip(first, second, strict=True))


def _cases(
    model: ModelHandle, detector: FastLangDetector
) -> dict[str, list[tuple[ChatRequest, ChatRequest]]]:
    prefs = PreferencePairs(model, blueprint=BLUEPRINT, token_range=(40, 150))
    writer = SampleWriter(model, model, SeedPicker(SEEDS))
    single = SampleWriter(model, model, SeedPicker(SEEDS), options=WriterOptions(skip_outline=True))
    field_tasks = [SampleTask(t.slot, 0, t.properties, SPEC, field_names=("subject", "body")) for t in TASKS]
    fields = SampleWriter(model, model, SeedPicker(ROW_SEEDS))
    reviser = SampleReviser(model, SeedPicker(SEEDS), tuple(RevisionType), 1)
    samples = ["Dear team, my order 1 is late. Anna", "Hi! Order 2 arrived broken. Ben"]
    classifier = SampleClassifier(SPEC, model)
    custom = RubricJudge(model, "The answer must cite the product name. " * 6)
    chats = [{**row, "_chat": [{"role": "user", "content": row["original_prompt"]}]} for row in ROWS]
    targets = {
        "translate": {"type": "translate", "languages": ["es"], "sample_rate": 1.0},
        "localize": {"type": "localize", "pairs": [{"country": "FR", "language": "fr"}], "sample_rate": 1.0},
    }
    expansions = {
        kind: LanguageExpansionStep(model, parse_language_expansion(body), detector)
        for kind, body in targets.items()
    }
    english = [
        {**row, "original_prompt": text}
        for row, text in zip(
            ROWS,
            [
                "How can I reset my password if I no longer have access to my email account?",
                "Can I export all of my contacts to a spreadsheet file from the contacts page?",
            ],
            strict=True,
        )
    ]
    return {
        "translate": _pair(expansions["translate"].requests_for, english),
        "localize": _pair(expansions["localize"].requests_for, english),
        "rephrase": _pair(Rephrase(model).requests_for, ROWS),
        "completion": _pair(
            GenerateCompletion(model, blueprint=BLUEPRINT, token_range=(40, 150)).requests_for, ROWS
        ),
        "chat": _pair(ChatCompletion(model, blueprint=BLUEPRINT).requests_for, chats),
        "reasoning": _pair(lambda row: ReasoningTraces(model).requests_for(row)[:1], ROWS),
        "answer_agreement": _pair(lambda row: ReasoningTraces(model).requests_for(row)[1:], ROWS),
        "safety": _pair(SafetyReview(model, categories=["violence", "hate"]).requests_for, ROWS),
        "rejected_answer": _pair(
            lambda row: [prefs.rewrite_request(row, row["enhanced_completion"], choose_flaw(ROWS[0]))], ROWS
        ),
        "pair_revision": _pair(lambda row: [prefs.revision_request(row, row["enhanced_completion"])], ROWS),
        "pair_compare": _pair(
            lambda row: list(
                PairwiseJudge(model, tag="t", blueprint=BLUEPRINT, length_range=(40, 150)).requests(
                    row["original_prompt"], "", row["enhanced_completion"], "A worse answer."
                )
            ),
            ROWS,
        ),
        "quality_judge": _pair(QualityJudge(model).requests_for, ROWS),
        "style_judge": _pair(StyleJudge(model, BLUEPRINT).requests_for, ROWS),
        "custom_judge": _pair(lambda row: [custom.request([("answer", row["enhanced_completion"])])], ROWS),
        "gen_outline": _pair(writer.requests_for, TASKS),
        "gen_draft": _pair(single.requests_for, TASKS),
        "gen_field": _pair(fields.requests_for, field_tasks),
        "gen_revise": _pair(
            lambda pair: reviser.requests_for(pair[0], pair[1]), list(zip(TASKS, samples, strict=True))
        ),
        "gen_conformance": _pair(
            lambda pair: ConformanceGate(model).requests_for(pair[0], pair[1]),
            list(zip(TASKS, samples, strict=True)),
        ),
        "gen_calculations": _pair(
            lambda pair: CalculatorCheck(model).requests_for(pair[0], pair[1]),
            list(zip(TASKS, samples, strict=True)),
        ),
        "gen_classify": _pair(lambda text: [classifier.request(EvalSample("s", text))], samples),
    }


STEPS = [
    "translate",
    "localize",
    "rephrase",
    "completion",
    "chat",
    "reasoning",
    "answer_agreement",
    "safety",
    "rejected_answer",
    "pair_revision",
    "pair_compare",
    "quality_judge",
    "style_judge",
    "custom_judge",
    "gen_outline",
    "gen_draft",
    "gen_field",
    "gen_revise",
    "gen_conformance",
    "gen_calculations",
    "gen_classify",
]


def _point(request: ChatRequest) -> int:
    marked = [i for i, m in enumerate(request.messages) if m.cache_point]
    assert len(marked) == 1, f"one message must end the stable prefix, found {marked}"
    return marked[0]


def _anthropic_prefix(route: Route, request: ChatRequest) -> bytes:
    """The Anthropic payload up to and including the block marked with cache_control."""
    payload, _ = anthropic.build_payload(route, request)
    wire = orjson.dumps(
        {"tools": payload.get("tools"), "system": payload.get("system"), "messages": payload["messages"]}
    )
    end = wire.index(b'"cache_control"')
    return wire[:end]


@pytest.fixture(scope="module")
def detector() -> FastLangDetector:
    return FastLangDetector()


@pytest.mark.parametrize("step", STEPS)
async def test_requests_share_a_marked_stable_prefix_across_rows(
    model: ModelHandle, detector: FastLangDetector, step: str
) -> None:
    anthropic_route = Route("anthropic/m", "anthropic", "m", base_url="http://127.0.0.1:1")
    for first, second in _cases(model, detector)[step]:
        k = _point(first)
        assert _point(second) == k
        assert first.messages[: k + 1] == second.messages[: k + 1]
        # The prefix ends where the rows start to differ: what follows the mark is the row's own content.
        assert len(first.messages) > k + 1
        assert first.messages[k + 1] != second.messages[k + 1]
        assert _anthropic_prefix(anthropic_route, first) == _anthropic_prefix(anthropic_route, second)


def test_every_model_step_is_covered() -> None:
    from importlib import resources

    templates = {
        p.name.removesuffix(".yaml") for p in (resources.files("datamill.steps") / "prompts").iterdir()
    }
    # Templates of one call per run (the spec analysis) or without a model (metadata injection) need no cache.
    per_row = templates - {"gen_spec", "metadata_injection"}
    marked = {
        name
        for name in per_row
        if "cache: true" in (resources.files("datamill.steps") / "prompts" / f"{name}.yaml").read_text()
    }
    assert marked == per_row


@pytest.mark.parametrize(
    ("level", "marked"), [("none", True), ("sample", True), ("field", False), ("prompt", False)]
)
def test_seeds_shuffled_per_prompt_leave_the_prefix_unmarked(
    model: ModelHandle, level: str, marked: bool
) -> None:
    # A prefix no later prompt reads would only pay Anthropic's cache-write price.
    from datamill.core.generation_request import SeedShuffling

    writer = SampleWriter(model, model, SeedPicker(SEEDS, SeedShuffling(level)))
    (request,) = writer.requests_for(TASKS[0])
    assert any(m.cache_point for m in request.messages) is marked
