"""Judges and judge evaluations through the official SDK (and ``client.post`` for defining judges).

The shared server grades with the shipped fake model (shapes, validation, tenancy); a server of this
module sends the judge model to the provider simulator, whose scripted judge passes polite answers and fails
the others while misbehaving like a real provider, and sends another model to a simulator that refuses.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from df_models import scripted_routes
from df_waits import wait_run
from test_specs import seed_dataset, seedless_spec

import dataframer
from conftest import FAKE_MODEL, RunningServer, running_server
from datamill.core.credits import PriceTable
from datamill.llm.simulator import serve_in_thread
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

JUDGE_MODEL = "openai/gpt-6-astra"
REFUSING_MODEL = "openai/gpt-6.1-sol"
RUBRIC = "The answer is polite and answers the question."


def define(client: dataframer.Dataframer, **body: Any) -> dict[str, Any]:
    """Create a judge through the SDK's generic POST; the judge object."""
    answer = client.post(
        "/api/dataframer/judges/", body={"name": "polite", "rubric": RUBRIC, **body}, cast_to=httpx.Response
    )
    return dict(answer.json())


def test_define_list_and_retrieve_a_judge(client: dataframer.Dataframer) -> None:
    judge = define(client, description="Politeness")
    assert judge["latest_version"]["version_number"] == 1
    assert judge["latest_version"]["model"] == FAKE_MODEL  # the server's default model
    (dimension,) = judge["latest_version"]["dimensions"]
    assert (dimension["name"], dimension["scoring_model"], dimension["required"]) == (
        "overall",
        "scale_1_5",
        True,
    )
    listed = client.dataframer.judges.list(limit=5)
    assert listed.count == 1
    assert [j.id for j in listed.results] == [judge["id"]]
    assert client.dataframer.judges.list(project_id="p1").count == 0
    got = client.dataframer.judges.retrieve(judge["id"])
    assert (got.name, got.description, got.latest_version.model) == ("polite", "Politeness", FAKE_MODEL)
    assert got.latest_version.dimensions[0].dimension_id == dimension["dimension_id"]


def test_editing_the_rubric_makes_a_new_version(client: dataframer.Dataframer) -> None:
    judge = define(client)
    path = f"/api/dataframer/judges/{judge['id']}/"
    edited = client.patch(path, body={"description": "only words"}, cast_to=httpx.Response).json()
    assert edited["latest_version"]["version_number"] == 1
    dims = [{"name": "polite", "scoring_model": "pass_fail"}, {"name": "helpful", "required": False}]
    edited = client.patch(
        path, body={"rubric": "Be kind.", "dimensions": dims}, cast_to=httpx.Response
    ).json()
    assert edited["latest_version"]["version_number"] == 2
    assert [d["scoring_model"] for d in edited["latest_version"]["dimensions"]] == ["pass_fail", "scale_1_5"]
    assert client.dataframer.judges.retrieve(judge["id"]).rubric == "Be kind."  # type: ignore[attr-defined]
    client.delete(path, cast_to=httpx.Response)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.judges.retrieve(judge["id"])


def test_bad_judges_are_refused_naming_the_field(client: dataframer.Dataframer) -> None:
    define(client)
    with pytest.raises(dataframer.BadRequestError) as caught:
        define(client)
    assert caught.value.body["code"] == "name_taken"
    with pytest.raises(dataframer.BadRequestError) as caught:
        define(
            client,
            name="other",
            model="nobody/knows",
            dimensions=[
                {"name": "a", "scoring_model": "stars"},
                {"name": "a"},
                {"scoring_model": "pass_fail"},
            ],
        )
    fields = {d["field"] for d in caught.value.body["details"]}
    assert fields == {"model", "dimensions[0].scoring_model", "dimensions[1].name", "dimensions[2].name"}
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.post("/api/dataframer/judges/", body={"name": "x"}, cast_to=httpx.Response)
    assert [d["field"] for d in caught.value.body["details"]] == ["rubric"]


def test_grade_one_interaction(client: dataframer.Dataframer) -> None:
    judge = define(
        client, dimensions=[{"name": "polite"}, {"name": "on_topic", "scoring_model": "pass_fail"}]
    )
    evaluation = client.dataframer.judges.evaluations.create(
        judge["id"],
        messages=[{"role": "user", "content": "Where is my order?"}],
        output="It ships tomorrow, thank you for waiting!",
        name="order-status",
        generation_model="my-model",
        metadata={"trace": "t1"},
    )
    assert evaluation.status == "succeeded"
    assert (evaluation.judge_id, evaluation.judge_version, evaluation.model) == (judge["id"], 1, FAKE_MODEL)
    assert evaluation.source == "api"
    verdict = evaluation.verdict
    assert [d.name for d in verdict.dimensions] == ["polite", "on_topic"]
    assert verdict.dimensions[1].passed is True
    assert 0 <= verdict.overall_score <= 1
    assert 0 <= verdict.confidence <= 1
    listed = client.dataframer.judges.evaluations.list(judge["id"])
    assert listed.count == 1
    assert listed.results[0].id == evaluation.id
    got = client.dataframer.judges.evaluations.retrieve(evaluation.id, judge_id=judge["id"])
    assert "Where is my order?" in got.rendered_text
    assert "It ships tomorrow" in got.rendered_text
    assert "order-status" in got.rendered_text


def test_grade_a_runs_samples_and_a_seed_dataset(client: dataframer.Dataframer) -> None:
    judge = define(client)
    run = client.dataframer.runs.create(
        spec_id=seedless_spec(client),
        number_of_samples=3,
        extra_body={"novelty_threshold": 1},  # the fake model's samples are near copies
    )
    assert wait_run(client, run.id).status == "SUCCEEDED"
    over_run = client.dataframer.judges.evaluations.create(judge["id"], extra_body={"run_id": run.id})
    assert over_run.status == "succeeded"
    samples = over_run.samples  # type: ignore[attr-defined]
    assert sorted(s["sample"] for s in samples) == ["sample_1", "sample_2", "sample_3"]
    assert all(s["verdict"] and s["error"] is None for s in samples)
    assert over_run.summary == {  # type: ignore[attr-defined]
        "samples": 3,
        "graded": 3,
        "failed": 0,
        "mean_score": 0.0,
        "min_score": 0.0,
        "max_score": 0.0,
    }
    assert over_run.target == {"kind": "run", "id": run.id}  # type: ignore[attr-defined]
    dataset_id = seed_dataset(client)
    over_seeds = client.dataframer.judges.evaluations.create(
        judge["id"], extra_body={"dataset_id": dataset_id, "sample_size": 2}
    )
    assert over_seeds.status == "succeeded"
    assert len(over_seeds.samples) == 2  # type: ignore[attr-defined]
    assert client.dataframer.judges.evaluations.list(judge["id"], limit=1).count == 2


def test_content_blocks_are_read_as_text(client: dataframer.Dataframer) -> None:
    judge = define(client)
    image = "data:image/png;base64," + "A" * 64
    evaluation = client.dataframer.judges.evaluations.create(
        judge["id"],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
        output="A cat.",
    )
    got = client.dataframer.judges.evaluations.retrieve(evaluation.id, judge_id=judge["id"])
    assert "What is in this picture?" in got.rendered_text
    assert "[image_url: not read by the judge]" in got.rendered_text
    assert "base64" not in got.rendered_text
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.judges.evaluations.create(
            judge["id"],
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
                }
            ],
            output="A cat.",
        )
    assert caught.value.body["details"][0]["field"] == "messages[0].content[0]"


def test_bad_evaluations_are_refused_naming_the_field(client: dataframer.Dataframer) -> None:
    judge = define(client)
    evaluations = client.dataframer.judges.evaluations
    with pytest.raises(dataframer.BadRequestError) as caught:
        evaluations.create(judge["id"], input="q")
    assert [d["field"] for d in caught.value.body["details"]] == ["output"]
    with pytest.raises(dataframer.BadRequestError) as caught:
        evaluations.create(judge["id"], input="q", output="a", extra_body={"run_id": "genrun_x"})
    assert "input" in {d["field"] for d in caught.value.body["details"]}
    with pytest.raises(dataframer.BadRequestError) as caught:
        evaluations.create(
            judge["id"], messages=[{"content": "no role"}], output="a", model_override="nobody/x"
        )
    assert {d["field"] for d in caught.value.body["details"]} == {"messages[0]", "model_override"}
    with pytest.raises(dataframer.NotFoundError):
        evaluations.create(judge["id"], extra_body={"run_id": "genrun_x"})
    with pytest.raises(dataframer.NotFoundError):
        evaluations.create("judge_x", input="q", output="a")
    with pytest.raises(dataframer.UnprocessableEntityError) as caught:
        evaluations.create(judge["id"], input="x" * 2_000_001, output="a")
    assert caught.value.body["code"] == "input_too_large"
    with pytest.raises(dataframer.BadRequestError):
        client.dataframer.judges.list(limit=0)
    for offset in (2**63, 2**116):  # past any database integer: refused, not a 500
        with pytest.raises(dataframer.BadRequestError) as caught:
            client.dataframer.judges.list(offset=offset)
        assert [d["field"] for d in caught.value.body["details"]] == ["offset"]
        with pytest.raises(dataframer.BadRequestError):
            client.dataframer.judges.evaluations.list(judge["id"], offset=offset)


def test_another_tenant_sees_no_judge(df_server: RunningServer, client: dataframer.Dataframer) -> None:
    judge = define(client)
    evaluation = client.dataframer.judges.evaluations.create(judge["id"], input="q", output="a")
    with dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0
    ) as other:
        api = other.dataframer.judges
        for call in (
            lambda: api.retrieve(judge["id"]),
            lambda: api.evaluations.list(judge["id"]),
            lambda: api.evaluations.retrieve(evaluation.id, judge_id=judge["id"]),
            lambda: api.evaluations.create(judge["id"], input="q", output="a"),
            lambda: other.patch(
                f"/api/dataframer/judges/{judge['id']}/", body={"rubric": "x"}, cast_to=httpx.Response
            ),
            lambda: other.delete(f"/api/dataframer/judges/{judge['id']}/", cast_to=httpx.Response),
        ):
            with pytest.raises(dataframer.NotFoundError):
                call()
        assert api.list().count == 0
    assert client.dataframer.judges.retrieve(judge["id"]).rubric == RUBRIC  # type: ignore[attr-defined]


def _polite_judge(request: Any) -> str:
    """The simulator's judge: an answer with 'please' or 'thank' is polite (5, passed), others are not (1)."""
    graded = re.search(r"<Output>\n(.*?)\n</Output>", request.prompt_text, re.DOTALL)
    polite = bool(graded and re.search(r"please|thank", graded.group(1), re.IGNORECASE))
    dimensions = request.schema["properties"]["dimensions"]["properties"]
    verdicts = {
        name: {
            "notes": "kind" if polite else "curt",
            **({"passed": polite} if "passed" in spec["properties"] else {"score": 5 if polite else 1}),
        }
        for name, spec in dimensions.items()
    }
    return json.dumps({"reasoning": "checked the tone", "dimensions": verdicts, "confidence": "high"})


@pytest.fixture(scope="module")
def graded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose JUDGE_MODEL is the scripted judge (with quirks) and REFUSING_MODEL refuses."""
    rates = {"think": 0.3, "json_fence": 0.3, "prose_json": 0.2}
    with (
        serve_in_thread(responder=_polite_judge, rates=rates, seed=5) as judge,
        serve_in_thread(rates={"refusal_field": 1.0}) as refusing,
    ):
        data_dir = tmp_path_factory.mktemp("judges")
        routes = scripted_routes(
            data_dir / "routes.yaml", {JUDGE_MODEL: judge.openai_url, REFUSING_MODEL: refusing.openai_url}
        )
        settings = ServerSettings.for_data_dir(data_dir)
        runs = RunSettings(model=FAKE_MODEL, routes_path=routes, poll_s=0.1)
        with running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
            yield server


def test_the_judges_verdicts_follow_the_model(graded_server: RunningServer) -> None:
    key = graded_server.new_key()
    with dataframer.Dataframer(base_url=graded_server.base_url, api_key=key, max_retries=0) as client:
        judge = define(
            client,
            model=JUDGE_MODEL,
            dimensions=[{"name": "tone"}, {"name": "kind", "scoring_model": "pass_fail"}],
        )
        scores = {}
        for answer in ("Thank you, it ships today.", "Figure it out.", "Please wait a day.", "No."):
            evaluation = client.dataframer.judges.evaluations.create(
                judge["id"], input="Where is it?", output=answer
            )
            assert evaluation.status == "succeeded", evaluation.error
            assert evaluation.model == JUDGE_MODEL
            assert evaluation.verdict.confidence == 1.0
            assert "<think>" not in evaluation.verdict.reasoning
            scores[answer] = (evaluation.verdict.overall_score, evaluation.verdict.dimensions[1].passed)
        assert scores == {
            "Thank you, it ships today.": (1.0, True),
            "Figure it out.": (0.0, False),
            "Please wait a day.": (1.0, True),
            "No.": (0.0, False),
        }


def test_a_refusing_judge_model_fails_the_evaluation_with_the_reason(graded_server: RunningServer) -> None:
    key = graded_server.new_key()
    with dataframer.Dataframer(base_url=graded_server.base_url, api_key=key, max_retries=0) as client:
        judge = define(client)
        evaluation = client.dataframer.judges.evaluations.create(
            judge["id"], input="q", output="a", model_override=REFUSING_MODEL
        )
        assert evaluation.status == "failed"
        assert evaluation.verdict is None
        assert "refused" in evaluation.error
        assert evaluation.model == REFUSING_MODEL
        assert client.dataframer.judges.evaluations.list(judge["id"]).results[0].status == "failed"


def _balance(server: RunningServer, tenant_id: str) -> float:
    return next(t.credits for t in server.context.tenants.list_tenants() if t.id == tenant_id)


def test_an_evaluation_is_charged_what_its_judge_spent(df_server: RunningServer) -> None:
    issued = df_server.context.tenants.create_key(f"judge-credits-{secrets.token_hex(4)}", credits=50.0)
    with dataframer.Dataframer(base_url=df_server.base_url, api_key=issued.key, max_retries=0) as client:
        judge = define(client, model=JUDGE_MODEL)  # the shared server routes it to the fake model, priced
        fresh = f"an answer never graded before {secrets.token_hex(4)}"  # not in the response cache
        evaluation = client.dataframer.judges.evaluations.create(judge["id"], input="q", output=fresh)
        spent = evaluation.cost_usd  # type: ignore[attr-defined]
        assert spent > 0
        assert _balance(df_server, issued.tenant.id) == pytest.approx(50.0 - PriceTable().credits(0, spent))


def test_a_tenant_without_credits_cannot_grade(df_server: RunningServer) -> None:
    issued = df_server.context.tenants.create_key(f"judge-broke-{secrets.token_hex(4)}", credits=0.0)
    with dataframer.Dataframer(base_url=df_server.base_url, api_key=issued.key, max_retries=0) as broke:
        judge = define(broke)  # defining a judge costs nothing
        with pytest.raises(dataframer.APIStatusError) as caught:
            broke.dataframer.judges.evaluations.create(judge["id"], input="q", output="a")
        assert caught.value.status_code == 402
        assert caught.value.body["code"] == "insufficient_credits"
        assert broke.dataframer.judges.evaluations.list(judge["id"]).count == 0
    assert _balance(df_server, issued.tenant.id) == 0.0
