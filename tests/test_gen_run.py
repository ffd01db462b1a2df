"""Generation runs on a scripted fake model: exactly N samples through failing gates; budgets; output."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from datamill.core.errors import PermanentModelError
from datamill.core.generation_request import SeedShuffling, parse_generation_request
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider, default_reply
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.generate import (
    CANDIDATE_BUDGET_FACTOR,
    GenerationBudgetSpent,
    GenerationModels,
    GenerationRun,
)
from datamill.pipelines.generate_output import write_generation
from datamill.steps.generation.sample import SampleTask, SeedPicker
from datamill.steps.generation.seeds import SeedSet, load_seeds, seeds_from_texts

#: Upper 0.1% points of chi-square (standard tables), by degrees of freedom.
CHI2_CRITICAL_0_001 = {1: 10.828, 2: 13.816}

SPEC = parse_spec_yaml(
    """
spec:
  description: A one-line product review
  requirements: [One sentence]
  data_property_variations:
    - property_name: Sentiment
      property_values: [positive, neutral, negative]
      base_distributions: {positive: 60, neutral: 25, negative: 15}
    - property_name: Product
      property_values: [phone, laptop]
      base_distributions: {phone: 70, laptop: 30}
"""
)


def _is_judge(request: ChatRequest) -> bool:
    return bool(request.json_schema and "conforms" in request.json_schema.get("properties", {}))


_ASKED = re.compile(r"^- (\w+): (\w+)$", re.MULTILINE)


def scripted(fail_every: int = 0, *, always_fail: bool = False):
    """Drafts name the request seed that wrote them and the values asked for; the blind judge reads the
    values back from the sample and finds a broken rule in multiples of `fail_every`."""

    def responder(route: Route, request: ChatRequest) -> str:
        if _is_judge(request):
            sample = request.messages[-1].content
            seed = int(re.findall(r"review#(\d+)", sample)[-1])
            bad = always_fail or (fail_every and seed % fail_every == 0)
            read = dict(re.findall(r"(\w+)=(\w+)", sample))
            violations = ["wrong sentiment"] if bad else []
            return json.dumps(
                {"rationale": "read", "properties": read, "violations": violations, "conforms": not bad}
            )
        if request.json_schema is not None:
            return default_reply(request)
        asked = " ".join(f"{k}={v}" for k, v in _ASKED.findall(request.messages[-1].content))
        return f"A fine review#{request.seed} {asked}"

    return responder


def _run(body: dict[str, object], responder=None, seeds: SeedSet | None = None, **kw):
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    # Scripted samples differ in a few characters: the novelty gate is tested on its own.
    request = parse_generation_request({"generation_model": "fake/gen", "novelty_threshold": 1, **body})
    run = GenerationRun(
        SPEC, request, GenerationModels.resolve(gateway, request), seeds, gateway=gateway, **kw
    )
    return run, fake, gateway


async def test_exactly_n_samples_pass_a_failing_conformance_gate_and_candidates_are_counted():
    body = {"number_of_samples": 40, "skip_outline": True, "filtering_types": ["conformance", "structural"]}
    run, fake, _ = _run(body, scripted(fail_every=3))
    result = await run.run()
    summary = result.summary
    assert len(result.samples) == 40
    assert [s.slot for s in result.samples] == list(range(1, 41))
    rejected = summary.rejected_by_gate.get("conformance", 0)
    assert rejected > 0
    assert summary.candidates == 40 + rejected
    assert summary.pass_rate == pytest.approx(40 / summary.candidates)
    judged = [c for c in fake.calls if _is_judge(c)]
    assert len(judged) == summary.candidates
    assert summary.usage["by_tag"]["gen_conformance"]["requests"] == summary.candidates
    assert summary.to_dict()["candidates"] == summary.candidates
    assert any(s.attempts > 1 for s in result.samples)


async def test_spent_budget_fails_with_the_pass_rate():
    body = {"number_of_samples": 5, "skip_outline": True, "filtering_types": ["conformance"]}
    run, _, _ = _run(body, scripted(always_fail=True))
    with pytest.raises(
        GenerationBudgetSpent, match=r"only 0 of 5 samples .*pass rate 0%.*wrong sentiment"
    ) as info:
        await run.run()
    assert info.value.summary.candidates == CANDIDATE_BUDGET_FACTOR * 5


async def test_delivered_properties_follow_the_spec_despite_gate_failures():
    body = {"number_of_samples": 400, "skip_outline": True, "filtering_types": ["conformance"], "seed": 5}
    run, _, _ = _run(body, scripted(fail_every=4))
    result = await run.run()
    for axis in SPEC.axes:
        counts = Counter(s.properties[axis.name] for s in result.samples)
        stat = sum((counts[v] - p * 400) ** 2 / (p * 400) for v, p in axis.base.items())
        assert stat < CHI2_CRITICAL_0_001[len(axis.values) - 1], (axis.name, counts)


async def test_outline_then_sections_then_revision_cycles():
    body = {
        "number_of_samples": 2,
        "outline_model": "fake/outline",
        "revision_model": "fake/revise",
        "revision_types": ["consistency", "conformance"],
        "max_revision_cycles": 2,
    }

    def responder(route: Route, request: ChatRequest) -> str:
        reply = default_reply(request)
        return reply if request.json_schema else f"{route.name}:{reply}"

    run, fake, gateway = _run(body, responder)
    result = await run.run()
    by_tag = gateway.usage.snapshot()["by_tag"]
    assert by_tag["gen_outline"]["requests"] == 2
    assert by_tag["gen_write"]["requests"] == 2  # the fake outline has one section
    assert by_tag["gen_revise"]["requests"] == 2 * 2 * 2
    assert all(s.text.startswith("fake/revise:") for s in result.samples)
    outline = next(c for c in fake.calls if c.json_schema and "sections" in c.json_schema["properties"])
    assert "Sentiment:" in outline.messages[-1].content


async def test_structured_seeds_give_json_rows_unified_or_field_by_field(tmp_path: Path):
    data = tmp_path / "seeds.jsonl"
    data.write_text('{"question": "Is it good?", "stars": 4}\n{"question": "Does it last?", "stars": 2}\n')
    seeds = load_seeds([data])
    unified, fake, _ = _run({"number_of_samples": 3, "unified_multifield": True}, None, seeds)
    rows = [json.loads(s.text) for s in (await unified.run()).samples]
    assert all(set(r) == {"question", "stars"} and isinstance(r["stars"], int) for r in rows)
    assert len(fake.calls) == 3

    def by_field(route: Route, request: ChatRequest) -> str:
        return "5" if 'field "stars"' in request.messages[-1].content else "Worth it?"

    body = {"number_of_samples": 2, "filtering_types": ["structural"], "novelty_threshold": 1}
    split, fake, _ = _run(body, by_field, seeds)
    rows = [json.loads(s.text) for s in (await split.run()).samples]
    assert rows == [{"question": "Worth it?", "stars": 5}] * 2
    assert len(fake.calls) == 2 * 2


async def test_structural_gate_rejects_text_that_is_not_the_seeds_json(tmp_path: Path):
    data = tmp_path / "seeds.jsonl"
    data.write_text('{"question": "Is it good?"}\n')
    run, _, _ = _run(
        {"number_of_samples": 2, "filtering_types": ["structural"], "revision_types": ["consistency"]},
        lambda route, request: "not json",
        load_seeds([data]),
    )
    with pytest.raises(GenerationBudgetSpent):
        await run.run()


async def test_empty_samples_are_always_rejected_and_fatal_errors_stop_the_run():
    run, _, _ = _run({"number_of_samples": 2, "skip_outline": True}, lambda route, request: "  ")
    with pytest.raises(GenerationBudgetSpent) as info:
        await run.run()
    assert info.value.summary.rejected_by_gate == {"empty": 6}
    assert "empty reply" in info.value.summary.reasons["empty"]

    def denied(route: Route, request: ChatRequest) -> str:
        raise PermanentModelError("bad key", status=401)

    run, _, _ = _run({"number_of_samples": 3, "skip_outline": True}, denied)
    with pytest.raises(PermanentModelError):
        await run.run()


def test_seed_picker_levels_and_cap():
    seeds = seeds_from_texts([f"seed {i}" for i in range(20)])

    def task(slot: int, attempt: int = 0) -> SampleTask:
        return SampleTask(slot, attempt, {}, SPEC)

    fixed = SeedPicker(seeds, SeedShuffling.NONE, limit=3)
    assert fixed.pick(task(1), "a") == fixed.pick(task(2), "b")
    assert len(fixed.pick(task(1), "a")) == 3
    per_sample = SeedPicker(seeds, SeedShuffling.SAMPLE, limit=3)
    assert per_sample.pick(task(1), "a") == per_sample.pick(task(1), "b")
    assert per_sample.pick(task(1), "a") != per_sample.pick(task(2), "a")
    per_prompt = SeedPicker(seeds, SeedShuffling.PROMPT, limit=3)
    assert per_prompt.pick(task(1), "a") != per_prompt.pick(task(1), "b")
    budgeted = SeedPicker(seeds, SeedShuffling.SAMPLE, budget=6)
    assert len(budgeted.pick(task(1), "a")) == 3  # "seed N" is 2 tokens


async def test_output_files(tmp_path: Path):
    run, _, _ = _run({"number_of_samples": 3, "skip_outline": True}, scripted())
    result = await run.run()
    write_generation(result, tmp_path / "out.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [1, 2, 3]
    assert set(lines[0]["properties"]) == {"Sentiment", "Product"}
    assert json.loads((tmp_path / "out.summary.json").read_text())["delivered"] == 3
    files = write_generation(result, tmp_path / "folder")
    assert [f.name for f in files] == ["sample_1.txt", "sample_2.txt", "sample_3.txt"]
    assert (tmp_path / "folder" / "run_summary.json").is_file()
