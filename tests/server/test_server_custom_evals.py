"""Custom evaluations: through the official SDK against a server whose judge is the fake model, and the
service with a scripted judge for the before/after scores, partial failures, bad models and restarts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from server_helpers import fields_of, qa_rows, wait_for, write_rows

from conftest import RunningServer, running_server
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.checkpoint import Checkpoint
from datamill.services.datasets.custom_evals import BackgroundCustomEvals, CustomEvalService, CustomEvalView
from datamill.services.datasets.output import CheckpointRunOutputs, DatasetOutputs
from datamill.services.settings.server import ServerSettings
from datamill.services.tenants import TenantService
from datamill.store import Dataset, LocalBlobStore, Store, utcnow
from datamill.store.ids import new_id

RUBRIC = "Is the answer helpful and polite?"


@pytest.fixture(scope="module")
def eval_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose judge (DATAMILL_MODEL) is the deterministic fake model, which scores every row 0."""
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("evals"))
    with running_server(settings, env={"DATAMILL_MODEL": "fake/judge"}) as running:
        yield running


@pytest.fixture
def sdk(eval_server: RunningServer) -> adaption.Adaption:
    return eval_server.client()


def _uploaded(client: adaption.Adaption, path: Path) -> str:
    done = client.datasets.upload_file(path)
    wait_for(client, done.dataset_id)
    return done.dataset_id


def _finished(client: adaption.Adaption, dataset_id: str, eval_id: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        found = client.datasets.custom_evals.get(eval_id, dataset_id=dataset_id)
        if found.status in ("succeeded", "failed"):
            return found
        assert time.monotonic() < deadline, f"custom eval stuck in {found.status}"
        time.sleep(0.02)


def _adapted_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "original_prompt": f"q{i}",
            "original_completion": "meh",
            "enhanced_prompt": f"Question {i}?",
            "enhanced_completion": "a better answer",
        }
        for i in range(count)
    ]


def _finish_run(store: Store, data_dir: Path, dataset_id: str, rows: list[dict[str, Any]]) -> str:
    """Stand in for a finished run: its output parts where runs keep them, and the dataset marked done."""
    run_id = new_id("run")
    Checkpoint(data_dir / "runs" / run_id, "fingerprint").save(0, rows, [])
    with store.session() as session:
        row = session.get(Dataset, dataset_id)
        assert row is not None
        row.run_id, row.status = run_id, "succeeded"
    return run_id


# -- through the SDK ---------------------------------------------------------------------------------------


def test_a_dataset_without_a_run_is_judged_before_only(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.csv", qa_rows(5)))
    made = sdk.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC, name="polite")
    assert (made.status, made.judge_prompt, made.name, made.dataset_id) == (
        "pending",
        RUBRIC,
        "polite",
        dataset_id,
    )
    done = _finished(sdk, dataset_id, made.custom_eval_id)
    assert done.status == "succeeded", done.error_message
    assert (done.score_before, done.score_after, done.improvement_percent) == (0.0, None, None)
    assert done.scored_rows == 5
    assert done.completed_at is not None
    assert done.model == "fake/judge"
    assert [r["after"] for r in done.results["rows"]] == [None] * 5


def test_a_run_output_is_judged_before_and_after(
    eval_server: RunningServer, sdk: adaption.Adaption, tmp_path: Path
) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.csv", qa_rows(3)))
    run_id = _finish_run(
        eval_server.context.store, eval_server.settings.data_dir, dataset_id, _adapted_rows(3)
    )
    made = sdk.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC)
    done = _finished(sdk, dataset_id, made.custom_eval_id)
    assert (done.status, done.run_id, done.scored_rows) == ("succeeded", run_id, 3)
    assert (done.score_before, done.score_after) == (0.0, 0.0)
    assert all(r["after"]["score"] == 0 for r in done.results["rows"])


def test_the_sample_size_bounds_the_rows_judged(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.jsonl", qa_rows(9)))
    made = sdk.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC, extra_body={"sample_size": 2})
    assert _finished(sdk, dataset_id, made.custom_eval_id).scored_rows == 2


def test_list_is_newest_first(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.csv", qa_rows(2)))
    first = sdk.datasets.custom_evals.create(dataset_id, judge_prompt="one")
    second = sdk.datasets.custom_evals.create(dataset_id, judge_prompt="two")
    listed = sdk.datasets.custom_evals.list(dataset_id)
    assert [e.custom_eval_id for e in listed.items] == [second.custom_eval_id, first.custom_eval_id]
    assert [e.judge_prompt for e in listed.items] == ["two", "one"]


def test_bad_requests_are_refused(sdk: adaption.Adaption, tmp_path: Path) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.csv", qa_rows(2)))
    with pytest.raises(adaption.BadRequestError) as caught:
        sdk.datasets.custom_evals.create(dataset_id, judge_prompt="  ")
    assert fields_of(caught.value) == ["judge_prompt"]
    pending = sdk.datasets.create(source={"name": "later.csv"}).dataset_id
    with pytest.raises(adaption.UnprocessableEntityError):
        sdk.datasets.custom_evals.create(pending, judge_prompt=RUBRIC)
    with pytest.raises(adaption.NotFoundError):
        sdk.datasets.custom_evals.get("ce_missing", dataset_id=dataset_id)
    assert sdk.datasets.custom_evals.list(dataset_id).items == []


def test_another_tenant_sees_nothing(
    eval_server: RunningServer, sdk: adaption.Adaption, tmp_path: Path
) -> None:
    dataset_id = _uploaded(sdk, write_rows(tmp_path / "qa.csv", qa_rows(2)))
    made = sdk.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC)
    other = eval_server.client()
    theirs = _uploaded(other, write_rows(tmp_path / "theirs.csv", qa_rows(2)))
    with pytest.raises(adaption.NotFoundError):
        other.datasets.custom_evals.get(made.custom_eval_id, dataset_id=dataset_id)
    with pytest.raises(adaption.NotFoundError):
        other.datasets.custom_evals.list(dataset_id)
    with pytest.raises(adaption.NotFoundError):
        other.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC)
    with pytest.raises(adaption.NotFoundError):  # an evaluation is found only under its own dataset
        other.datasets.custom_evals.get(made.custom_eval_id, dataset_id=theirs)
    _finished(sdk, dataset_id, made.custom_eval_id)


# -- the service, with a scripted judge ----------------------------------------------------------------------


def _scripted(route: Route, request: ChatRequest) -> str:
    """Level 5 (10.0) for an enhanced example, 3 (5.0) for an original one; garbage for row q2's original."""
    if any("<<<\nq2\n>>>" in m.content for m in request.messages):
        return "not json"
    text = request.messages[-1].content
    return json.dumps({"rationale": "scripted", "score": 5 if "better" in text else 3})


class Setup:
    """A store with a tenant, a dataset whose run finished, and a service whose judge is `fake`."""

    def __init__(self, tmp_path: Path, model: str = "fake/judge") -> None:
        self.store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
        self.store.migrate()
        self.tenant_id = TenantService(self.store).create_key("t").tenant.id
        self.dataset_id = new_id("ds")
        with self.store.session() as session:
            now = utcnow()
            session.add(
                Dataset(
                    id=self.dataset_id,
                    tenant_id=self.tenant_id,
                    name="d",
                    kind="uploaded",
                    status="awaiting_input",
                    ingest_state="ready",
                    processing_mode="adapt",
                    row_count=4,
                    created_at=now,
                    updated_at=now,
                )
            )
        self.run_id = _finish_run(self.store, tmp_path, self.dataset_id, _adapted_rows(4))
        self.fake = FakeProvider(responder=_scripted)
        outputs = DatasetOutputs(
            self.store, LocalBlobStore(tmp_path / "blobs"), CheckpointRunOutputs(tmp_path)
        )
        self.service = CustomEvalService(
            self.store, outputs, lambda: Gateway(Routing.load(), providers={"fake": self.fake}), model=model
        )

    def create(self) -> CustomEvalView:
        return self.service.create(self.tenant_id, self.dataset_id, RUBRIC, "scripted")

    def get(self, eval_id: str) -> CustomEvalView:
        return self.service.get(self.tenant_id, self.dataset_id, eval_id)


async def test_scores_before_and_after_and_the_change(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    made = setup.create()
    await setup.service.run(made.id)
    done = setup.get(made.id)
    assert done.status == "succeeded"
    # Row q2's original cannot be scored, so the row is left out of both means.
    assert (done.score_before, done.score_after, done.improvement_percent) == (5.0, 10.0, 100.0)
    assert done.scored_rows == 3
    assert done.run_id == setup.run_id
    assert done.results is not None
    failed = [r for r in done.results["rows"] if r["before"]["error"]]
    assert [r["row"] for r in failed] == [2]
    assert any(RUBRIC in message.content for message in setup.fake.calls[0].messages)


async def test_a_model_that_is_not_routed_fails_the_evaluation(tmp_path: Path) -> None:
    setup = Setup(tmp_path, model="nowhere/none")
    made = setup.create()
    await setup.service.run(made.id)
    done = setup.get(made.id)
    assert done.status == "failed"
    assert "nowhere/none" in (done.error_message or "")
    assert done.completed_at is not None


async def test_a_restart_runs_unfinished_evaluations(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    made = setup.create()  # pending, as a stopped server would leave it
    runner = BackgroundCustomEvals(setup.service)
    await runner.start()
    try:
        for _ in range(500):
            if setup.get(made.id).status == "succeeded":
                break
            await asyncio.sleep(0.01)
        assert setup.get(made.id).status == "succeeded"
    finally:
        await runner.close()
