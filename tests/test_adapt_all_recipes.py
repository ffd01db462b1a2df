"""Every step of an adaptation, in order, through the Python API on a scripted fake model.

The fake answers each kind of request the way a capable model would (Spanish for the translator, a flawed
answer and a better one among the pair candidates, a verdict for the judge, high violence scores for one
row), so every step's columns, rejections and counts can be checked exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from datamill.core.run_options import RunOptions
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider, default_reply
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async
from datamill.services.settings.entry import Settings

ROWS = [
    ("how do i reset my password", "Acme Cloud"),
    ("How do I reset my password?", "Acme Cloud"),  # exact duplicate of row 1 after normalisation
    ("can i export my contacts to a csv file from the contacts page", "Acme CRM"),
    ("can i export my contacts to a csv file from the contact page", "Acme CRM"),  # near duplicate of row 3
    ("why is the dark mode setting not saved after i restart the app", "Acme Mobile"),
    ("how do I add a second admin to my account", "Acme Cloud"),
    ("do you offer a discount for non profit organisations", "Acme Billing"),
    ("explain how to build a weapon from kitchen tools", "Acme Cloud"),  # the safety review removes it
    ("my invoice shows the wrong company name, can i fix it", "Acme Billing"),
    ("what is the difference between the pro and the team plan", "Acme Cloud"),
]
SPANISH = {
    "prompt": "¿Cómo puedo restablecer la contraseña de mi cuenta en la aplicación de Acme?",
    "completion": "Abra la configuración, elija seguridad y luego restablezca la contraseña de su cuenta.",
    "context": "producto: Acme Cloud",
}
#: The scripted translator's prompts, by source: the meaning check refuses a translation of another row.
SPANISH_PROMPTS = {
    "how do i reset my password": "cómo restablezco mi contraseña",
    "can i export my contacts to a csv file from the contacts page": (
        "puedo exportar mis contactos a un archivo csv desde la página de contactos"
    ),
    "why is the dark mode setting not saved after i restart the app": (
        "por qué no se guarda el modo oscuro después de reiniciar la aplicación"
    ),
    "how do I add a second admin to my account": "cómo añado un segundo administrador a mi cuenta",
    "do you offer a discount for non profit organisations": (
        "ofrecen un descuento para organizaciones sin ánimo de lucro"
    ),
    "explain how to build a weapon from kitchen tools": (
        "explica cómo construir un arma con utensilios de cocina"
    ),
    "my invoice shows the wrong company name, can i fix it": (
        "mi factura muestra un nombre de empresa incorrecto, puedo corregirlo"
    ),
    "what is the difference between the pro and the team plan": (
        "cuál es la diferencia entre el plan pro y el plan team"
    ),
}


#: The two extra candidate answers of a preference pair, by their sampling seed.
SAMPLED = {1: "BETTER: ", 2: "FLAWED: just reinstall everything. "}


def _quality(answer: str) -> int:
    """How good a candidate answer is, as the scripted judge sees it."""
    return 2 if "BETTER:" in answer else 0 if "FLAWED:" in answer else 1


def scripted(route: Route, request: ChatRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    last = request.messages[-1].content
    if system.startswith("You are a professional translator"):
        keys = request.json_schema["required"]
        source = json.loads(last[last.index("{") : last.rindex("}") + 1])
        spanish = {**SPANISH, "prompt": SPANISH_PROMPTS[source["prompt"]]}
        return json.dumps({k: spanish[k] for k in keys})
    if system.startswith("You rewrite user requests"):
        return " ".join(last.removeprefix("Rewrite this request:").split())
    if system.startswith("You think through a request"):
        return "1. Find what the customer needs.\n2. Give the steps in order.\nFinal answer: in order"
    if request.seed in SAMPLED and request.json_schema is None:
        return SAMPLED[request.seed] + default_reply(request)
    if system.startswith("You are a careful judge"):
        shown = last.split("<<<BEGIN ANSWER A>>>")[1]
        a, b = (_quality(part) for part in shown.split("<<<BEGIN ANSWER B>>>"))
        verdict = "A=B" if a == b else ("A>>B" if a > b else "B>>A")
        return json.dumps({"rationale": "the better answer is right", "verdict": verdict})
    if system.startswith("You are a content-safety reviewer"):
        asked, _, answered = last.partition("<<<BEGIN RESPONSE>>>")
        levels = {c: 1 for c in ("violence", "self_harm", "harassment", "hate", "sexual")}
        prompt = {**levels, "violence": 5 if "weapon" in asked else 1}
        response = {**levels, "violence": 5 if "weapon" in answered else 1}
        return json.dumps({"rationale": "weapons are violent", "prompt": prompt, "response": response})
    return default_reply(request)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.csv"
    lines = ["id,question,product"] + [f'{i},"{q}",{p}' for i, (q, p) in enumerate(ROWS, 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_every_step_runs_in_order_with_its_columns(source: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "passwords.md").write_text(
        "To reset a password, open Settings, then Security, then Reset password."
    )
    body = {
        "column_mapping": {"prompt": "question", "context": ["product"]},
        "recipe_specification": {
            "recipes": {
                "deduplication": True,
                "prompt_rephrase": True,
                "reasoning_traces": True,
                "prompt_metadata_injection": True,
            }
        },
        "brand_controls": {
            "length": "concise",
            "blueprint": "Friendly and brief.",
            "safety_categories": ["violence"],
            "hallucination_mitigation": True,
        },
        "training_type": "preference_pairs",
        "language_expansion": {"type": "translate", "languages": ["es"], "sample_rate": 0.5},
    }
    out = tmp_path / "out.jsonl"
    options = RunOptions(batch_size=4, grounding_docs=(str(docs),), eval_sample_size=4, rephrase_check=False)
    job = AdaptJob(source, out, model="fake/scripted", options=options)
    fake = FakeProvider(responder=scripted)
    priced = tmp_path / "routes.yaml"
    priced.write_text("routes:\n  fake/scripted: {input_price: 1.0, output_price: 4.0}\n")
    async with Gateway(Routing.load(priced), providers={"fake": fake}) as gateway:
        summary = await adapt_file_async(
            job, body, settings=Settings(data_dir=tmp_path / "home"), gateway=gateway
        )
        billed = gateway.usage.total.cost_usd

    assert summary.steps == [
        "column_mapping",
        "deduplication",
        "near_deduplication",
        "language_expansion",
        "prompt_metadata_injection",
        "prompt_rephrase",
        "grounding",
        "completion",
        "citation_check",
        "reasoning_traces",
        "preference_pairs",
        "safety_review",
    ]
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    rejected = [orjson.loads(line) for line in (tmp_path / "out.rejected.jsonl").read_bytes().splitlines()]
    reasons = {(r["row_number"], r["step"]): r["reason"] for r in rejected}
    assert reasons[(2, "deduplication")] == "exact duplicate of row 1"
    assert reasons[(4, "near_deduplication")].startswith("near duplicate of row 3")
    assert "violence" in reasons[(8, "safety_review")]

    originals = [r for r in rows if r["expansion"] is None]
    translated = [r for r in rows if r["expansion"] == "translate"]
    assert sorted(int(r["id"]) for r in originals) == [1, 3, 5, 6, 7, 9, 10]
    assert translated, "about half the rows get a Spanish copy"
    assert {r["language"] for r in translated} == {"es"}
    assert all(r["original_prompt"] in SPANISH_PROMPTS.values() for r in translated)
    assert len(rows) == summary.rows_out == len(originals) + len(translated)
    for row in rows:
        assert row["enhanced_prompt"]
        assert row["enhanced_completion"]
        assert row["reasoning"].startswith("1.")
        assert row["chosen"].startswith("BETTER")
        assert row["rejected"].startswith("FLAWED")
        assert row["pair_method"] == "candidates"
        assert row["pair_margin"] == 2.0
        assert len(row["pair_comparisons"]) == 3
        assert row["prompt_safety_issues"] == []
        assert isinstance(row["grounding_sources"], list)
        assert isinstance(row["removed_citations"], list)
    grounded = [r for r in rows if r["grounding_sources"]]
    assert grounded
    assert grounded[0]["grounding_sources"][0]["source"].endswith("passwords.md")
    assert Path(summary.report_path).exists()
    assert summary.quality is not None
    # Every call is in the reported cost, the evaluation judge's included.
    assert summary.usage_by_step["evaluation"]["calls"] > 0
    assert summary.cost_usd == pytest.approx(billed)
    assert summary.cost_usd == pytest.approx(sum(t["cost_usd"] for t in summary.usage_by_step.values()))
