"""A grounded run reports its citation recall and precision (as ALCE defines them) where a user reads it: the
command line's summary (table and ``--json``), the JSON and HTML reports beside the output, and on the server
the run's evaluation that the official SDK reads.

The answers and the citation judge's verdicts come from the provider simulator over real HTTP. The judge
reads each passage as the facts it states, so its verdicts follow from the passages the run really found.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from runs_helpers import run_settings, runs_server, upload, wait_done

from datamill.cli.main import cli
from datamill.llm.providers.fake import fake_value
from datamill.llm.simulator import WireRequest
from datamill.llm.simulator.thread import serve_in_thread

MODEL = "sim-openai/gpt"
DOCS = {
    "warranty.md": "Amber products carry a warranty of two years from the day of purchase.",
    "claims.md": "Amber warranty claims are filed online at the help centre.",
    "reset.md": "Onyx devices reset when you hold the power button for ten seconds.",
}
ROWS = [
    {"id": 1, "question": "How long is the amber warranty?", "answer": "old"},
    {"id": 2, "question": "How do I reset an onyx device?", "answer": "old"},
    {"id": 3, "question": "Why is the sky blue at noon?", "answer": "old"},
]
#: What the model writes, by question word: the first sentence of the warranty answer cites both passages
#: found although only one gives the two years (an irrelevant citation); its second sentence states what no
#: passage gives (unsupported).
ANSWERS = {
    "warranty": "Amber products carry a two year warranty [1][2]. The warranty also covers water damage [1].",
    "reset": "Hold the power button for ten seconds [1].",
    "sky": "Sunlight scatters in the air.",
}
#: The facts a sentence may state; a passage gives a fact when its text holds it.
FACTS = ("two year", "water damage", "power button", "filed online")
_SOURCE = re.compile(r"^\[(\d+)\] (.*)$", re.M)
_CLAIM = re.compile(r"^Claim (\d+) \(cites \[([\d, ]+)\]\): (.*)$", re.M)
#: ALCE's figures for the answers above: 3 cited sentences, 2 supported; 4 citations, 2 precise.
CITATIONS = {
    "checked": 4,
    "removed": 2,
    "sentences": 3,
    "supported": 2,
    "judged": 4,
    "precise": 2,
    "recall": 2 / 3,
    "precision": 0.5,
}
GROUNDING = {"rows_grounded": 2, "rows_ungrounded": 1, "citations": CITATIONS}
NO_RECIPES: Any = {
    "recipes": {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
}
GROUNDED: Any = {"hallucination_mitigation": True}
PAGE = Path(__file__).parents[2] / "docs" / "grounding.md"


def _documented() -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The report's figures and the summary's lines as docs/grounding.md shows them."""
    section = PAGE.read_text(encoding="utf-8").split("### Citation recall and precision")[1]
    figures = json.loads(section.split("```json\n")[1].split("```")[0])
    printed = section.split("<!-- not run: printed output, not code -->\n```\n")[1].split("```")[0]
    lines = [tuple(re.split(r"\s{2,}", line.strip(), maxsplit=1)) for line in printed.splitlines()]
    return figures, lines  # type: ignore[return-value]


def _citation_verdicts(prompt: str) -> str:
    passages = {int(n): text for n, text in _SOURCE.findall(prompt)}

    def covers(numbers: list[int], sentence: str) -> bool:
        stated = {fact for fact in FACTS if fact in sentence}
        return bool(numbers) and all(any(f in passages[n] for n in numbers) for f in stated)

    checks = []
    for claim, cited, sentence in _CLAIM.findall(prompt):
        numbers = [int(n) for n in cited.split(",")]
        verdicts = [
            {"n": n, "alone": covers([n], sentence), "rest": covers([m for m in numbers if m != n], sentence)}
            for n in numbers
        ]
        supported = covers(numbers, sentence)
        reason = "the passages say so" if supported else "no passage says so"
        checks.append({"id": int(claim), "reason": reason, "supported": supported, "passages": verdicts})
    return json.dumps({"checks": checks})


def _responder(request: WireRequest) -> str:
    if "fact-checker of cited answers" in request.system:
        return _citation_verdicts(request.last_user)
    if request.schema is not None:  # the evaluation's judges
        return json.dumps(fake_value(request.schema, "judge"))
    for word, answer in ANSWERS.items():
        if word in request.last_user:
            return answer
    return "I do not know."


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "kb"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    return docs


def _check_rows(rows: list[dict[str, Any]]) -> None:
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[1]["enhanced_completion"].count("[") == 1  # one citation of the first sentence is left
    assert {c["reason"] for c in by_id[1]["removed_citations"]} >= {"no passage says so"}
    assert by_id[2]["removed_citations"] == []
    assert by_id[3]["grounded"] is False
    assert all(not key.startswith("_") for row in rows for key in row)  # the tallies stay internal


def test_the_command_line_reports_citation_recall_and_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    data = tmp_path / "qa.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in ROWS))
    out = tmp_path / "out.jsonl"
    with serve_in_thread(responder=_responder) as sim:
        routes = sim.write_routes(tmp_path / "routes.yaml")
        args = ["adapt", str(data), "--prompt", "question", "--completion", "answer", "--recipes", "none"]
        args += ["--model", MODEL, "--routes", str(routes), "-o", str(out), "--no-cache"]
        args += ["--hallucination-mitigation", "--grounding-docs", str(_docs(tmp_path))]
        as_json = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
        table = CliRunner().invoke(cli, args, catch_exceptions=False, env={"COLUMNS": "200"})
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    assert summary["grounding"] == GROUNDING
    _check_rows([orjson.loads(line) for line in out.read_bytes().splitlines()])
    report = json.loads((tmp_path / "out.evaluation.json").read_text())
    assert report["raw_results"]["grounding"] == GROUNDING
    page = (tmp_path / "out.report.html").read_text()
    assert "66.7% (2 of 3 cited sentences supported by their citations)" in page
    assert "50.0% (2 of 4 citations relevant; 2 removed)" in page
    assert table.exit_code == 0, table.output
    figures, lines = _documented()
    assert figures == GROUNDING  # the page shows what this run reports
    for label, value in lines:
        assert re.search(rf"{re.escape(label)}\s*│\s*{re.escape(value)}", table.output), (label, table.output)


def test_the_servers_run_carries_them_in_the_evaluation_the_sdk_reads(tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    with serve_in_thread(responder=_responder) as sim:
        routes = sim.write_routes(tmp_path / "routes.yaml")
        settings = run_settings(model=MODEL, routes_path=routes, evaluate=False, grounding_docs=(str(docs),))
        with runs_server(tmp_path / "srv", settings) as srv:
            client = srv.client()
            dataset_id = upload(client, tmp_path / "qa.jsonl", ROWS)
            client.datasets.adapt(
                dataset_id,
                column_mapping={"prompt": "question", "completion": "answer"},
                recipe_specification=NO_RECIPES,
                brand_controls=GROUNDED,
            )
            assert wait_done(client, dataset_id).status == "succeeded"
            evaluation = client.datasets.get_evaluation(dataset_id)
            text = client.datasets.download(dataset_id, file_format="jsonl").text()
            with httpx.Client(base_url=srv.base_url) as web:
                assert web.post("/login", data={"api_key": client.api_key}).status_code == 303
                page = web.get(f"/datasets/{dataset_id}/report").text
    _check_rows([json.loads(line) for line in text.splitlines()])
    assert evaluation.status == "skipped"
    assert evaluation.raw_results is not None
    assert evaluation.raw_results["grounding"] == GROUNDING
    # The web app's report page shows them too, though the grade did not run.
    _, lines = _documented()
    for label, value in lines:
        assert re.search(rf"<th>{re.escape(label)}</th><td>{re.escape(html.escape(value))}</td>", page), label
