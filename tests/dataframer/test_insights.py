"""Failures and context through the official SDK: what a tenant's own work left behind.

On the shared server's fake model, a generation run of near-identical samples fails its novelty gate (a
failed job and rejected samples), and the fake judge scores the lowest level (failing samples); the
context lists the tenant's judges as rubrics and its red-team specs' statements as facts.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from df_waits import wait_run
from test_judges import define
from test_red_team import make_spec
from test_specs import seedless_spec

import dataframer


def test_a_new_tenant_has_no_failures_and_an_empty_context(client: dataframer.Dataframer) -> None:
    failures = client.dataframer.failures.list(include="reviews,context")
    assert (failures.count, failures.results) == (0, [])
    assert failures.context.rubrics == []
    context = client.dataframer.context.retrieve()
    assert (context.rubric_count, context.rubrics, context.knowledge.total) == (0, [], 0)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.failures.retrieve("fail_job_x")
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.context.retrieve(rubric_id="judge_x")


def test_a_failed_run_and_its_rejected_samples_are_failures(client: dataframer.Dataframer) -> None:
    run = client.dataframer.runs.create(spec_id=seedless_spec(client), number_of_samples=3, skip_outline=True)
    done = wait_run(client, run.id)
    assert done.status == "FAILED"  # the fake model writes near copies: the novelty gate rejects them
    failures = {f.id: f for f in client.dataframer.failures.list().results}
    failed = next(f for f in failures.values() if f.id.startswith("fail_job_"))
    assert failed.description == done.error
    assert run.id in failed.name
    assert failed.analysis.causes[0].examples[0].source_id == run.id
    rejected = next(f for f in failures.values() if f.id.startswith("fail_rej_"))
    gates = {gate: n for gate, n in done.summary["rejected_by_gate"].items() if n}
    assert {c.title for c in rejected.analysis.causes} == {f"rejected by {g}" for g in gates}
    assert rejected.trace_count == sum(gates.values())
    assert sum(c.attributed_trace_count for c in rejected.analysis.causes) == rejected.trace_count
    one = client.dataframer.failures.retrieve(failed.id, include="context")
    assert one.analysis.causes[0].description == done.error
    assert one.context.rubric_count == 0
    summary = client.dataframer.failures.list(detail="summary").results[0]
    assert summary.analysis.cause_count >= 1
    assert summary.analysis.causes is None
    assert summary.rubrics is None
    assert client.dataframer.failures.list(project_id="p1").count == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert client.dataframer.failures.list(updated_since=later).count == 0
    assert client.dataframer.failures.list(limit=1, offset=1).results[0].id == list(failures)[1]
    client.dataframer.runs.delete(run.id)
    assert client.dataframer.failures.list().count == 0  # a deleted run's failures go with it


def test_failing_judge_verdicts_are_failures(client: dataframer.Dataframer) -> None:
    judge = define(
        client,
        dimensions=[{"name": "tone"}, {"name": "on_topic", "scoring_model": "pass_fail", "required": False}],
    )
    evaluation = client.dataframer.judges.evaluations.create(judge["id"], input="Where is it?", output="No.")
    assert evaluation.verdict.overall_score < 0.5  # the fake judge's lowest level
    (failure,) = client.dataframer.failures.list(include="judgments").results
    assert failure.id == f"fail_judge_{evaluation.id}"
    assert failure.rubrics[0].id == judge["id"]
    (judgment,) = failure.llm_judge.judgments
    assert (judgment.judge.id, judgment.rubric_id, judgment.overall_score) == (
        judge["id"],
        judge["id"],
        evaluation.verdict.overall_score,
    )
    assert [(v.dimension, v.score) for v in judgment.verdicts] == [("tone", "1"), ("on_topic", "pass")]
    listed = client.dataframer.failures.list().results[0]
    assert listed.llm_judge.judgments is None  # only when included
    one = client.dataframer.failures.retrieve(failure.id, exclude="judgments")
    assert one.llm_judge.judgment_count == 1
    assert one.llm_judge.judgments is None
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.failures.list(include="everything")
    assert caught.value.body["details"][0]["field"] == "include"


def test_context_holds_the_tenants_rubrics_and_facts(client: dataframer.Dataframer) -> None:
    judge = define(
        client,
        dimensions=[{"name": "tone"}, {"name": "on_topic", "scoring_model": "pass_fail", "required": False}],
    )
    client.dataframer.judges.evaluations.create(judge["id"], input="Where is my order?", output="No.")
    spec = make_spec(client)
    context = client.dataframer.context.retrieve()
    assert context.rubric_count == 1
    (rubric,) = context.rubrics
    assert (rubric.id, rubric.instructions, rubric.version) == (
        judge["id"],
        "The answer is polite and answers the question.",
        1,
    )
    assert [len(d.levels) for d in rubric.dimensions] == [5, 2]
    assert rubric.examples_omitted == 1  # the failing answer, shown with rubric_id
    facts = {f.kind: f for f in context.knowledge.facts}
    assert facts["concern"].text == spec.concerns
    assert facts["application"].text == spec.app_description
    assert facts["domain"].tags == ["pharmacy_bot"]
    assert context.knowledge.total == 3
    only = client.dataframer.context.retrieve(rubric_id=judge["id"])
    assert getattr(only, "knowledge", None) is None
    (negative,) = only.rubrics[0].dimensions[0].negative_examples
    assert negative.answer == "No."
    assert "Where is my order?" in negative.query
    assert client.dataframer.context.retrieve(project_id="p1").rubric_count == 0


def test_another_tenant_sees_none_of_it(df_server: object, client: dataframer.Dataframer) -> None:
    judge = define(client)
    evaluation = client.dataframer.judges.evaluations.create(judge["id"], input="q", output="a")
    make_spec(client)
    server_url, key = str(client.base_url).rstrip("/"), df_server.new_key()  # type: ignore[attr-defined]
    with dataframer.Dataframer(base_url=server_url, api_key=key, max_retries=0) as other:
        assert other.dataframer.failures.list().count == 0
        assert other.dataframer.context.retrieve().knowledge.total == 0
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.failures.retrieve(f"fail_judge_{evaluation.id}")
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.context.retrieve(rubric_id=judge["id"])
    assert httpx.get(f"{server_url}/api/dataframer/context/").status_code == 401
