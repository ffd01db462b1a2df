"""AutoScientist routes through the official SDK, with the worker off: runs stay pending, nothing trains.

What is checked here needs no training: the checks of a create body, the dataset and the model; the quote;
credits reserved and given back; idempotency keys; listing, paging and filtering; cancel; download before any
iteration; tenancy. The runs that train are in `test_server_autoscientist_training`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adaption
import pytest
from autoscientist_helpers import marker_rows, needs_training, training_server
from runs_helpers import MAPPING, upload
from server_helpers import error_body, fields_of

from conftest import RunningServer


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("autoscientist-api")
    with training_server(base, base / "cache", worker=False) as (running, _judge):
        yield running


def _dataset(client: adaption.Adaption, tmp_path: Path, rows: int = 10) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return upload(
        client, tmp_path / "qa.csv", marker_rows(rows), processing_mode="raw", column_mapping=MAPPING
    )


def _credits(srv: RunningServer, client: adaption.Adaption) -> float:
    found = srv.context.tenants.authenticate(client.api_key)
    assert found is not None
    return found.credits


def test_create_names_every_bad_field(srv: RunningServer) -> None:
    with pytest.raises(adaption.BadRequestError) as caught:
        srv.client().autoscientist.create(
            dataset_id="ds_any",
            hyperparams={
                "training_type": "full",
                "simpo_gamma": 0.5,
                "lora_r": 8,
                "lora_alpha": 24,
                "batch_size": 0,
                "momentum": 0.9,
            },
            max_iterations=0,
            target_win_rate=0.4,
            augmentation_domain_rows=10,
            column_mapping={"prompt": "q", "reasoning_trace": "r"},
            extra_body={"colour": "red"},
        )
    assert sorted(fields_of(caught.value)) == sorted(
        [
            "colour",
            "column_mapping.reasoning_trace",
            "hyperparams.training_type",
            "hyperparams.simpo_gamma",
            "hyperparams.batch_size",
            "hyperparams.momentum",
            "hyperparams.lora_alpha",
            "augmentation_domain_rows",
            "max_iterations",
            "target_win_rate",
        ]
    )


def test_create_needs_a_finished_dataset_of_the_tenant(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    with pytest.raises(adaption.NotFoundError):
        client.autoscientist.create(dataset_id="ds_missing")
    theirs = _dataset(srv.client(), tmp_path / "theirs")
    with pytest.raises(adaption.NotFoundError):  # another tenant's dataset, like an unknown one
        client.autoscientist.create(dataset_id=theirs)
    waiting = upload(client, tmp_path / "raw.csv", marker_rows(6))  # awaits an adaptation
    with pytest.raises(adaption.UnprocessableEntityError, match="no finished output"):
        client.autoscientist.create(dataset_id=waiting)


def test_queued_runs_reserve_credits_list_cancel_and_replay(srv: RunningServer, tmp_path: Path) -> None:
    needs_training()
    client = srv.client()
    dataset_id = _dataset(client, tmp_path)
    other = _dataset(client, tmp_path / "other", rows=6)
    start = _credits(srv, client)
    quote = client.autoscientist.create(
        dataset_id=dataset_id, max_iterations=4, extra_body={"estimate": True}
    )
    quoted = quote.to_dict()
    assert quoted["estimate"] is True
    assert quoted["estimated_credits_consumed"] == 1.0  # 10 rows x 4 iterations x 0.01, the minimum is 1
    assert _credits(srv, client) == start
    assert list(client.autoscientist.list()) == []
    with pytest.raises(adaption.BadRequestError) as unknown:
        client.autoscientist.create(dataset_id=dataset_id, model="no/such-model")
    assert fields_of(unknown.value) == ["model"]

    first = client.autoscientist.create(
        dataset_id=dataset_id, training_method="alignment", idempotency_key="k1", max_iterations=4
    )
    assert first.status == "pending"
    assert first.training_method == "instruction"  # no preference pairs in the dataset
    assert (first.max_iterations, first.target_win_rate) == (4, 0.7)
    assert first.iterations_completed == 0
    assert first.best_win_rate is None
    assert _credits(srv, client) == pytest.approx(start - 1.0)
    again = client.autoscientist.create(
        dataset_id=dataset_id, training_method="alignment", idempotency_key="k1", max_iterations=4
    )
    assert again.id == first.id
    with pytest.raises(adaption.UnprocessableEntityError) as reused:  # the key with other settings
        client.autoscientist.create(dataset_id=dataset_id, idempotency_key="k1")
    assert fields_of(reused.value) == ["idempotency_key"]
    assert "'k1'" in error_body(reused.value)["message"]
    assert _credits(srv, client) == pytest.approx(start - 1.0)  # neither the replay nor the 422 reserved
    second = client.autoscientist.create(dataset_id=dataset_id)
    third = client.autoscientist.create(dataset_id=other, target_win_rate=0.9)
    assert third.target_win_rate == 0.9

    pages = client.autoscientist.list(limit=2)
    assert [r.id for r in pages.runs] == [third.id, second.id]
    assert pages.next_cursor
    assert [r.id for r in client.autoscientist.list(limit=2)] == [third.id, second.id, first.id]
    assert [r.id for r in client.autoscientist.list(dataset_id=dataset_id)] == [second.id, first.id]
    assert list(srv.client().autoscientist.list()) == []  # another tenant sees none
    with pytest.raises(adaption.BadRequestError) as bad_cursor:
        client.autoscientist.list(cursor="zzz")
    assert fields_of(bad_cursor.value) == ["cursor"]

    with pytest.raises(adaption.UnprocessableEntityError, match="no trained model yet"):
        client.autoscientist.download(first.id)
    with pytest.raises(adaption.NotFoundError):
        srv.client().autoscientist.cancel(first.id)
    cancelled = client.autoscientist.cancel(first.id)
    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is not None
    assert _credits(srv, client) == pytest.approx(start - 2.0)  # first's reservation is back
    with pytest.raises(adaption.ConflictError):
        client.autoscientist.cancel(first.id)
    fresh = client.autoscientist.create(dataset_id=dataset_id, idempotency_key="k1")
    assert fresh.id != first.id  # the key's run ended: the same key starts a new one
    assert client.autoscientist.get(first.id).status == "cancelled"
