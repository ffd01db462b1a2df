"""Spec analysis on the fake model: seeds within a budget → a valid spec; seedless specs; seed loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamill.core.errors import DataFormatError, ValidationError
from datamill.core.spec import parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.spec_analysis import (
    SpecAnalysisOptions,
    analyse_seeds,
    spec_from_objectives,
)
from datamill.steps.generation.seeds import load_seeds, seeds_from_texts

REPLY = {
    "description": "  A short support answer ",
    "requirements": ["One answer", " "],
    "properties": [
        {
            "name": "Tone",
            "description": "How it sounds",
            "values": [
                {"value": "warm", "percentage": 30},
                {"value": "formal", "percentage": 30},
                {"value": "warm", "percentage": 99},
                {"value": "", "percentage": 5},
            ],
            "depends_on": "Topic",
            "conditional": [
                {"parent_value": "billing", "values": [{"value": "formal", "percentage": 1}]},
                {"parent_value": "nope", "values": [{"value": "warm", "percentage": 1}]},
            ],
        },
        {"name": "Topic", "description": "", "values": [{"value": "billing", "percentage": 0}]},
        {"name": "Tone", "description": "duplicate", "values": [{"value": "x", "percentage": 1}]},
        {"name": "", "description": "nameless", "values": [{"value": "x", "percentage": 1}]},
    ],
}


def _gateway(reply: object) -> tuple[Gateway, FakeProvider]:
    def responder(route: Route, request: ChatRequest) -> str:
        return json.dumps(reply)

    fake = FakeProvider(responder=responder)
    return Gateway(Routing.load(), providers={"fake": fake}), fake


async def test_reply_becomes_a_valid_repaired_spec():
    gateway, fake = _gateway(REPLY)
    seeds = seeds_from_texts(["Q: a? A: b.", "Q: c? A: d."])
    options = SpecAnalysisOptions(generate_conditional_distributions=True)
    draft = await analyse_seeds(seeds, gateway.model("fake/test"), options)
    spec = parse_spec_yaml(draft.yaml)
    assert spec.description == "A short support answer"
    assert spec.requirements == ("One answer",)
    assert [a.name for a in spec.axes] == ["Tone", "Topic"]
    tone = spec.axis("Tone")
    assert tone.values == ("warm", "formal")
    assert tone.base == {"warm": 0.5, "formal": 0.5}
    assert tone.parent == "Topic"
    assert tone.conditional == {"billing": {"warm": 0.0, "formal": 1.0}}
    assert spec.axis("Topic").base == {"billing": 1.0}  # all-zero percentages: uniform
    assert spec.metadata["spec_generation_model_name"] == "fake/test"
    assert spec.metadata["seeds_read"] == 2
    assert fake.calls[0].json_schema is not None
    assert "Q: c? A: d." in fake.calls[0].messages[-1].content


async def test_uniform_when_distributions_are_off_and_no_conditionals_unless_asked():
    gateway, _ = _gateway(REPLY)
    options = SpecAnalysisOptions(generate_distributions=False)
    draft = await analyse_seeds(seeds_from_texts(["x"]), gateway.model("fake/test"), options)
    assert draft.spec.axis("Tone").parent is None
    assert draft.spec.axis("Tone").base == {"warm": 0.5, "formal": 0.5}


async def test_the_model_reads_only_the_seeds_that_fit_the_budget():
    gateway, fake = _gateway(REPLY)
    seeds = seeds_from_texts([f"seed number {i} " + "word " * 100 for i in range(50)])
    options = SpecAnalysisOptions(seed_tokens=500, seed=3)
    draft = await analyse_seeds(seeds, gateway.model("fake/test"), options)
    prompt = fake.calls[0].messages[-1].content
    shown = sum(f"seed number {i} " in prompt for i in range(50))
    assert shown == draft.seeds_read
    assert 1 <= shown <= 4  # each seed is about 130 tokens
    again = await analyse_seeds(seeds, gateway.model("fake/test"), options)
    assert again.seeds_read == shown


async def test_seedless_spec_from_objectives():
    gateway, fake = _gateway(REPLY)
    draft = await spec_from_objectives("Recipes for vegan desserts", gateway.model("fake/test"))
    assert "vegan desserts" in fake.calls[0].messages[-1].content
    assert draft.spec.metadata["dataset_type"] == "MULTI_FILE"
    with pytest.raises(ValidationError):
        await spec_from_objectives("  ", gateway.model("fake/test"))


async def test_default_fake_reply_still_gives_a_valid_spec():
    gateway = Gateway(Routing.load(), providers={"fake": FakeProvider()})
    draft = await analyse_seeds(seeds_from_texts(["a", "b"]), gateway.model("fake/test"))
    assert len(parse_spec_yaml(draft.yaml).axes) == 1


def test_load_seeds_reads_rows_files_and_folders(tmp_path: Path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"q": "a", "n": 1}\n{"q": "b", "n": 2}\n')
    rows = load_seeds([data])
    assert rows.dataset_type == "SINGLE_FILE"
    assert rows.structured
    assert rows.field_names == ("q", "n")
    assert json.loads(rows.seeds[1].text) == {"q": "b", "n": 2}
    folder = tmp_path / "docs"
    (folder / "case1").mkdir(parents=True)
    (folder / "case1" / "a.md").write_text("alpha")
    (folder / "b.txt").write_text("beta")
    found = load_seeds([folder])
    assert found.dataset_type == "MULTI_FOLDER"
    assert not found.structured
    assert [s.text for s in found.seeds] == ["beta", "### a.md\nalpha"]
    with pytest.raises(DataFormatError):
        load_seeds([tmp_path / "missing"])


def test_a_set_of_workbooks_and_documents_is_read_as_their_text(tmp_path: Path) -> None:
    import docx
    import openpyxl

    folder = tmp_path / "set"
    folder.mkdir()
    for name, rows in {
        "march.xlsx": [("day", "sales"), (1, 20)],
        "april.xlsx": [("day", "sales"), (2, 35)],
    }.items():
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        book.save(folder / name)
    document = docx.Document()
    document.add_paragraph("Quarterly sales summary.")
    document.save(str(folder / "notes.docx"))
    found = load_seeds([folder])
    assert found.dataset_type == "MULTI_FILE"
    texts = {seed.name: seed.text for seed in found.seeds}
    assert [json.loads(line) for line in texts["april.xlsx"].splitlines()] == [{"day": "2", "sales": "35"}]
    assert texts["notes.docx"] == "Quarterly sales summary."
    (folder / "blob.bin").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DataFormatError, match=r"blob\.bin.*UTF-8 text, or xlsx, parquet, pdf"):
        load_seeds([folder])
