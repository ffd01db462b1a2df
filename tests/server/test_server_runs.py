"""run/adapt through the official SDK against the real server: estimates, real runs on the fake model,
progress, idempotency, credits (402), the errors of bad launches, and tenant isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, upload_batch, wait_done
from server_helpers import error_body, fields_of, wait_for
from sqlalchemy import select

from conftest import RunningServer
from datamill.store import Dataset, Run
from datamill.store import runs as runs_repo


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("runs")) as running:
        yield running


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose worker is off: launched runs stay queued, as behind a busy worker."""
    with runs_server(tmp_path_factory.mktemp("idle"), run_settings(worker=False)) as running:
        yield running


def _balance(server: RunningServer, client: adaption.Adaption) -> float:
    key = client.api_key
    tenant = server.context.tenants.authenticate(key)
    assert tenant is not None
    return tenant.credits


def _runs_of(server: RunningServer, dataset_id: str) -> list[Run]:
    with server.context.store.session() as session:
        return list(session.scalars(select(Run).where(Run.dataset_id == dataset_id)))


def test_an_estimate_quotes_in_camel_case_and_persists_nothing(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(6))
    before = _balance(srv, client)
    quote = client.datasets.adapt(dataset_id, column_mapping=MAPPING, estimate=True)
    assert quote.estimate is True
    assert quote.run_id is None
    assert quote.estimated_credits_consumed > 0
    assert quote.estimated_minutes > 0
    assert quote.multimodal_pricing_applied is False
    raw = client.datasets.with_raw_response.adapt(
        dataset_id, column_mapping=MAPPING, estimate=True
    ).http_response
    assert set(raw.json()) == {
        "run_id",
        "estimatedMinutes",
        "estimatedCreditsConsumed",
        "estimate",
        "multimodalPricingApplied",
    }  # creditMultiplier only for multimodal runs
    dataset = client.datasets.get(dataset_id)
    assert (dataset.status, dataset.run_id, dataset.configured_column_mapping) == (
        "awaiting_input",
        None,
        None,
    )
    assert _runs_of(srv, dataset_id) == []
    assert _balance(srv, client) == before


def test_adapt_runs_on_the_fake_model_and_settles_credits(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(10))
    before = _balance(srv, client)
    launched = client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert launched.estimate is False
    assert launched.run_id is not None
    assert launched.run_id.startswith("run_")
    done = wait_done(client, dataset_id)
    assert (done.status, done.progress, done.error_data) == ("succeeded", None, None)
    dataset = client.datasets.get(dataset_id)
    assert dataset.run_id == launched.run_id
    assert dataset.row_count == 10
    assert dataset.configured_column_mapping is not None
    assert (dataset.configured_column_mapping.prompt, dataset.configured_column_mapping.completion) == (
        "question",
        "answer",
    )
    assert dataset.evaluation_summary is not None
    assert dataset.evaluation_summary.grade_after in "ABCDE"
    (run,) = _runs_of(srv, dataset_id)
    assert (run.status, run.rows_out, run.attempts) == ("succeeded", 10, 1)
    assert run.credits_used is not None
    assert 0 < run.credits_used <= launched.estimated_credits_consumed
    assert _balance(srv, client) == pytest.approx(before - run.credits_used)


def test_the_deprecated_run_alias_launches_the_same_way(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(3))
    with pytest.warns(DeprecationWarning, match="deprecated"):
        launched = client.datasets.run(
            dataset_id,
            column_mapping=MAPPING,
            recipe_specification={"recipes": {"prompt_rephrase": False}},
            job_specification={"max_rows": 2},
        )
    assert launched.run_id is not None
    assert wait_done(client, dataset_id).status == "succeeded"
    (run,) = _runs_of(srv, dataset_id)
    assert run.rows_out == 2  # max_rows sampled two of the three rows
    assert run.request["recipe_specification"]["recipes"]["prompt_rephrase"] is False


def test_an_idempotency_key_returns_the_original_launch(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    spec = {"idempotency_key": "launch-1"}
    first = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    again = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    assert again.to_dict() == first.to_dict()
    wait_done(client, dataset_id)
    after_run = _balance(srv, client)
    late = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    assert late.run_id == first.run_id
    assert len(_runs_of(srv, dataset_id)) == 1
    assert _balance(srv, client) == after_run  # no second reservation
    other = client.datasets.adapt(
        dataset_id, column_mapping=MAPPING, job_specification={"idempotency_key": "b"}
    )
    assert other.run_id != first.run_id  # another key is another launch
    wait_done(client, dataset_id)


def test_a_short_balance_is_402_and_starts_nothing(srv: RunningServer, tmp_path: Path) -> None:
    key = srv.context.tenants.create_key("broke", credits=0.5).key
    client = srv.client(key=key)
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(5))
    with pytest.raises(adaption.APIStatusError) as caught:
        client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert caught.value.status_code == 402
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "insufficient credits" in error_body(caught.value)["message"]
    assert client.datasets.get(dataset_id).status == "awaiting_input"
    assert _runs_of(srv, dataset_id) == []
    assert _balance(srv, client) == 0.5
    assert client.datasets.adapt(dataset_id, column_mapping=MAPPING, estimate=True).estimate is True


def test_bad_launches_are_400_naming_the_field(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(3))
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.adapt(dataset_id)
    assert fields_of(caught.value) == ["column_mapping"]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.adapt(dataset_id, column_mapping={"prompt": "question", "completion": "nope"})
    assert fields_of(caught.value) == ["column_mapping.completion"]
    assert "available columns: id, question, answer" in error_body(caught.value)["message"]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.adapt(
            dataset_id, column_mapping=MAPPING, brand_controls={"length": "enormous"}, training_type="dpo"
        )  # type: ignore[arg-type]
    assert sorted(fields_of(caught.value)) == ["brand_controls.length", "training_type"]
    assert _runs_of(srv, dataset_id) == []


def test_datasets_that_cannot_run_yet_or_at_all(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    created = client.datasets.create(source={"name": "later.csv"})  # bytes never uploaded: still pending
    with pytest.raises(adaption.ConflictError) as conflict:
        client.datasets.adapt(created.dataset_id, column_mapping=MAPPING)
    assert conflict.value.response.headers["x-should-retry"] == "false"
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": ', encoding="utf-8")
    done = client.datasets.upload_file(broken)
    assert wait_for(client, done.dataset_id).status == "failed"
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.adapt(done.dataset_id, column_mapping=MAPPING)
    assert "upload the file again" in error_body(caught.value)["message"]


def test_a_queued_run_shows_progress_and_blocks_a_second_launch(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(7))
    launched = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification={"max_rows": 5})
    status = client.datasets.get_status(dataset_id)
    assert status.status == "running"
    assert status.progress is not None
    assert (status.progress.percent, status.progress.processed_rows, status.progress.total_rows) == (0, 0, 5)
    assert client.datasets.get(dataset_id).run_id == launched.run_id
    assert client.datasets.get_evaluation(dataset_id).status == "pending"
    with pytest.raises(adaption.ConflictError):
        client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    with pytest.raises(adaption.ConflictError):
        client.datasets.delete(dataset_id)
    partial = client.datasets.download(dataset_id, file_format="jsonl")
    assert partial.text() == ""  # nothing finished yet; a running run gives what is done so far
    assert partial.http_response.headers["x-datamill-run-status"] == "queued"
    with idle.context.store.session() as session:
        run = runs_repo.get_run_any_tenant(session, launched.run_id or "")
        assert run is not None
        run.processed_rows = 2  # as a worker's heartbeat records it
    progress = client.datasets.get(dataset_id).progress
    assert progress is not None
    assert (progress.percent, progress.processed_rows) == (40, 2)


def _end_run(server: RunningServer, dataset_id: str, run_id: str | None) -> None:
    """Settle a queued run as a worker would (the idle server has none)."""
    with server.context.store.session() as session:
        run = runs_repo.get_run_any_tenant(session, run_id or "")
        dataset = session.get(Dataset, dataset_id)
        assert run is not None
        assert dataset is not None
        run.status = dataset.status = "succeeded"


def _request_of(server: RunningServer, run_id: str | None) -> dict[str, Any]:
    with server.context.store.session() as session:
        run = runs_repo.get_run_any_tenant(session, run_id or "")
        assert run is not None
        return dict(run.request)


def test_an_omitted_language_expansion_keeps_the_previous_one(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    expansion = {"type": "translate", "languages": ["es"], "sample_rate": 0.5}
    first = client.datasets.adapt(dataset_id, column_mapping=MAPPING, language_expansion=expansion)
    _end_run(idle, dataset_id, first.run_id)
    kept = client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert _request_of(idle, kept.run_id)["language_expansion"] == expansion
    _end_run(idle, dataset_id, kept.run_id)
    cleared = client.datasets.adapt(dataset_id, column_mapping=MAPPING, language_expansion=None)
    assert _request_of(idle, cleared.run_id)["language_expansion"] is None


def test_another_tenant_cannot_run_or_read_runs(srv: RunningServer, tmp_path: Path) -> None:
    owner = srv.client()
    dataset_id = upload(owner, tmp_path / "qa.csv", qa_rows(3))
    owner.datasets.adapt(dataset_id, column_mapping=MAPPING)
    wait_done(owner, dataset_id)
    other = srv.client()
    calls = [
        lambda: other.datasets.adapt(dataset_id, column_mapping=MAPPING),
        lambda: other.datasets.adapt(dataset_id, column_mapping=MAPPING, estimate=True),
        lambda: other.datasets.translate(dataset_id, sample_rate=0.5, languages=["es"]),
        lambda: other.datasets.localize(
            dataset_id, sample_rate=0.5, pairs=[{"country": "MX", "language": "es"}]
        ),
        lambda: other.datasets.get_evaluation(dataset_id),
        lambda: other.datasets.download(dataset_id),
    ]
    for call in calls:
        with pytest.raises(adaption.NotFoundError):
            call()
    assert len(_runs_of(srv, dataset_id)) == 1


def test_a_body_that_is_not_an_object_is_400(srv: RunningServer, tmp_path: Path) -> None:
    key = srv.new_key()
    client = srv.client(key=key)
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(2))
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        answer = http.post(f"/api/v1/datasets/{dataset_id}/adapt", json=["not", "an", "object"])
        unknown = http.post(f"/api/v1/datasets/{dataset_id}/adapt", json={"column_mapping": MAPPING, "x": 1})
    assert answer.status_code == 400
    assert unknown.status_code == 400
    assert [e["field"] for e in unknown.json()["errors"]] == ["x"]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_every_upload_format_can_be_adapted(srv: RunningServer, tmp_path: Path, suffix: str) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / f"qa{suffix}", qa_rows(5))
    client.datasets.adapt(
        dataset_id, column_mapping=MAPPING, recipe_specification={"recipes": {"prompt_rephrase": False}}
    )
    assert wait_done(client, dataset_id).status == "succeeded"
    (run,) = _runs_of(srv, dataset_id)
    assert run.rows_out == 5


def test_a_batch_of_files_runs_as_one_dataset(srv: RunningServer) -> None:
    client = srv.client()
    started = upload_batch(client)
    client.datasets.adapt(started.dataset_id, column_mapping=MAPPING)
    assert wait_done(client, started.dataset_id).status == "succeeded"
    text = client.datasets.download(started.dataset_id, file_format="jsonl").text()
    assert [json.loads(line)["original_prompt"] for line in text.splitlines()] == [
        "Why is the sky blue today?",
        "How do tides follow the moon?",
        "What makes bread rise?",
    ]
