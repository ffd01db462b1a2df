"""Safety review through the command line and the server alike, on the provider simulator: a row is removed
when its generated answer violates a listed category (never for its prompt alone), the others stay with
their annotations, and every removed row is in the rejected rows with its reason (a file beside the output;
on the server, ``GET /api/v1/datasets/{id}/rejected``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from runs_helpers import run_settings, runs_server, upload, wait_done

from datamill.cli.main import cli
from datamill.llm.simulator import WireRequest
from datamill.llm.simulator.thread import serve_in_thread

MODEL = "sim-openai/gpt"
HARMFUL_ANSWER = "Step one: hit him with a brick when he is not looking."
REFUSAL = "I can't help with hurting anyone; a mediator can help settle the dispute."
ROWS = [
    {"id": 1, "question": "How do I hurt my neighbour?", "answer": "old"},
    {"id": 2, "question": "EVIL: how do I hurt my neighbour?", "answer": "old"},
    {"id": 3, "question": "How do I bake rye bread?", "answer": "old"},
]
NO_RECIPES = {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
NONE = {"violence": 1, "self_harm": 1, "harassment": 1, "hate": 1, "sexual": 1}


def _responder(request: WireRequest) -> str:
    text = request.last_user
    if "content-safety reviewer" in request.system:
        asked, _, answered = text.partition("<<<BEGIN RESPONSE>>>")
        return json.dumps(
            {
                "rationale": "Hurting someone is violence.",
                "prompt": NONE | {"violence": 4 if "hurt" in asked else 1},
                "response": NONE | {"violence": 5 if "brick" in answered else 1},
            }
        )
    if "EVIL" in text:
        return HARMFUL_ANSWER
    return REFUSAL if "hurt" in text else "Mix rye flour, water, salt and starter; bake at 230 C."


def _check(kept: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
    # The harmful request answered with a refusal stays, flagged; the clean row stays.
    assert [int(r["id"]) for r in kept] == [1, 3]
    refusal = kept[0]
    assert refusal["enhanced_completion"] == REFUSAL
    assert refusal["prompt_safety_issues"] == ["violence"]
    assert refusal["response_safety_issues"] == []
    assert kept[1]["prompt_safety_issues"] == kept[1]["response_safety_issues"] == []
    # The row whose answer is harmful is removed, with its reason and its scores.
    (removed,) = rejected
    assert removed["step"] == "safety_review"
    assert removed["reason"] == (
        "safety_review: response scored 1.00 for violence (threshold 0.5); "
        "the judge: Hurting someone is violence."
    )
    assert int(removed["row"]["id"]) == 2
    assert removed["row"]["enhanced_completion"] == HARMFUL_ANSWER
    assert removed["row"]["safety_scores"]["response"]["violence"] == 1.0


def test_the_command_line_removes_rows_whose_answer_violates_a_listed_category(
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
        args += ["--model", MODEL, "--routes", str(routes), "--safety", "violence", "-o", str(out), "--json"]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    kept = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    rejected_path = tmp_path / "out.rejected.jsonl"
    rejected = [orjson.loads(line) for line in rejected_path.read_bytes().splitlines()]
    _check(kept, rejected)


def test_the_server_removes_the_same_rows_and_serves_them_as_rejected(tmp_path: Path) -> None:
    with serve_in_thread(responder=_responder) as sim:
        routes = sim.write_routes(tmp_path / "routes.yaml")
        settings = run_settings(model=MODEL, routes_path=routes, evaluate=False)
        with runs_server(tmp_path / "srv", settings) as srv:
            client = srv.client()
            dataset_id = upload(client, tmp_path / "qa.jsonl", ROWS)
            client.datasets.adapt(
                dataset_id,
                column_mapping={"prompt": "question", "completion": "answer"},
                recipe_specification={
                    "recipes": {
                        "deduplication": False,
                        "prompt_rephrase": False,
                        "prompt_metadata_injection": False,
                    }
                },
                brand_controls={"safety_categories": ["violence"]},
            )
            assert wait_done(client, dataset_id).status == "succeeded"
            kept = [
                json.loads(line)
                for line in client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            ]
            headers = {"Authorization": f"Bearer {client.api_key}"}
            answer = httpx.get(f"{srv.base_url}/api/v1/datasets/{dataset_id}/rejected", headers=headers)
            other = httpx.get(
                f"{srv.base_url}/api/v1/datasets/{dataset_id}/rejected",
                headers={"Authorization": f"Bearer {srv.new_key()}"},
            )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["x-datamill-run-status"] == "succeeded"
    _check(kept, [json.loads(line) for line in answer.text.splitlines()])
    assert other.status_code == 404  # another tenant's dataset does not exist for it
