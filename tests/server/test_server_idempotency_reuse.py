"""An idempotency key sent again with a different request, through the official SDK, on SQLite and
PostgreSQL: the launch routes (adapt/run, translate, extend) answer 422 naming the key and its field and
start nothing, while the same request under the same key still answers the original launch, also when many
callers race with one key and two different bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import adaption
import pytest
from pg_helpers import KINDS, database_url
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload
from server_helpers import error_body, fields_of
from sqlalchemy import func, select

from conftest import RunningServer
from datamill.store import Run

JOB_KEY = "job_specification.idempotency_key"
#: A template for the completion prompt, sent in ``extra_body.prompt_templates``.
ONE_WORD = {
    "version": 1,
    "messages": [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "{{ prompt }}"},
    ],
}


@pytest.fixture(params=KINDS)
def idle(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server on a fresh database of each kind whose worker is off, so launched runs stay queued."""
    with (
        database_url(request.param, tmp_path) as url,
        runs_server(tmp_path / "data", run_settings(worker=False), database_url=url) as running,
    ):
        yield running


def _runs(srv: RunningServer) -> int:
    with srv.context.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(Run)) or 0)


def _credits(srv: RunningServer, client: adaption.Adaption) -> float:
    tenant = srv.context.tenants.authenticate(client.api_key)
    assert tenant is not None
    return tenant.credits


def _refused(call: Any, key: str, field: str) -> None:
    """`call()` raises the SDK's 422 error whose JSON body names `key` and `field`, marked not to retry."""
    with pytest.raises(adaption.UnprocessableEntityError) as caught:
        call()
    error = caught.value
    body = error_body(error)
    assert body["statusCode"] == 422
    assert f"idempotency key {key!r}" in body["message"]
    assert "different parameters" in body["message"]
    assert fields_of(error) == [field]
    assert error.response.headers["x-should-retry"] == "false"


def test_an_adapt_key_reused_with_another_request_is_422(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    other_dataset = upload(client, tmp_path / "other.csv", qa_rows(4, start=10))
    spec = {"idempotency_key": "k-adapt"}
    first = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    balance = _credits(idle, client)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        again = client.datasets.run(dataset_id, column_mapping=MAPPING, job_specification=spec)
    assert again.to_dict() == first.to_dict()  # /run is /adapt: the same request, the original launch

    differing = {
        "other steps": lambda: client.datasets.adapt(
            dataset_id,
            column_mapping=MAPPING,
            recipe_specification={"recipes": {"prompt_rephrase": False}},
            job_specification=spec,
        ),
        "other options": lambda: client.datasets.adapt(
            dataset_id,
            column_mapping=MAPPING,
            brand_controls={"length": "minimal"},
            job_specification={**spec, "max_rows": 2},
        ),
        "own prompts": lambda: client.datasets.adapt(
            dataset_id,
            column_mapping=MAPPING,
            job_specification=spec,
            extra_body={"prompt_templates": {"completion": ONE_WORD}},
        ),
        "other dataset": lambda: client.datasets.adapt(
            other_dataset, column_mapping=MAPPING, job_specification=spec
        ),
    }
    for call in differing.values():
        _refused(call, "k-adapt", JOB_KEY)
    assert _runs(idle) == 1
    assert _credits(idle, client) == balance
    assert client.datasets.get(other_dataset).status != "running"
    late = client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    assert late.to_dict() == first.to_dict()


def test_translate_and_extend_keys_reused_with_another_request_are_422(
    idle: RunningServer, tmp_path: Path
) -> None:
    client = idle.client()
    source = upload(client, tmp_path / "qa.csv", qa_rows(4), processing_mode="raw", column_mapping=MAPPING)
    first = client.datasets.translate(source, sample_rate=1, languages=["es"], idempotency_key="k-t")
    assert client.datasets.translate(
        source, sample_rate=1, languages=["es"], idempotency_key="k-t"
    ).dataset_id == (first.dataset_id)
    _refused(
        lambda: client.datasets.translate(source, sample_rate=1, languages=["fr"], idempotency_key="k-t"),
        "k-t",
        "idempotency_key",
    )

    chat = [{"role": "user", "content": "Plan a picnic"}, {"role": "assistant", "content": "Bring fruit."}]
    chats = upload(client, tmp_path / "chats.jsonl", [{"id": 1, "messages": json.dumps(chat)}])
    spec = {"idempotency_key": "k-e"}
    made = client.datasets.extend_trajectories(
        chats, column_mapping={"chat": "messages"}, job_specification=spec
    )
    replayed = client.datasets.extend_trajectories(
        chats, column_mapping={"chat": "messages"}, job_specification=spec
    )
    assert (replayed.run_id, replayed.dataset_id) == (made.run_id, made.dataset_id)
    _refused(
        lambda: client.datasets.extend_trajectories(
            chats, column_mapping={"chat": "messages"}, job_specification={**spec, "max_rows": 1}
        ),
        "k-e",
        JOB_KEY,
    )
    assert _runs(idle) == 2
    assert len(list(client.datasets.list())) == 4  # two sources, one translation, one extension


def test_racing_callers_of_one_key_with_two_bodies_get_one_run(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    callers = 12
    barrier = Barrier(callers)

    def one(i: int) -> Any:
        spec: dict[str, Any] = {"idempotency_key": "k-race", "max_rows": 2 + i % 2}
        barrier.wait()
        try:
            return spec["max_rows"], client.datasets.adapt(
                dataset_id, column_mapping=MAPPING, job_specification=spec
            )
        except adaption.APIStatusError as exc:
            return spec["max_rows"], exc

    with ThreadPoolExecutor(callers) as pool:
        answers = list(pool.map(one, range(callers)))
    launched = {rows for rows, answer in answers if not isinstance(answer, Exception)}
    assert len(launched) == 1  # every caller with the winner's body got the launch, no other body did
    (winner,) = launched
    run_ids = {answer.run_id for rows, answer in answers if rows == winner}
    assert len(run_ids) == 1
    losers = [answer for rows, answer in answers if rows != winner]
    assert len(losers) == callers // 2
    assert all(isinstance(answer, adaption.UnprocessableEntityError) for answer in losers)
    assert _runs(idle) == 1
