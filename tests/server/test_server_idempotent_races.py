"""Idempotent launches under a race: many callers sending one idempotency key at the same moment make
one run (adaptation, translation, combine, invent, AutoScientist), and every caller gets the launch's answer
(not a 409 for having lost the race)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import adaption
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload
from sqlalchemy import select

from conftest import RunningServer
from datamill.store import Run

CALLERS = 20


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose worker is off, so the launched run stays queued while the callers race."""
    with runs_server(tmp_path_factory.mktemp("races"), run_settings(worker=False)) as running:
        yield running


def _race(client: adaption.Adaption, call: Any) -> list[Any]:
    """`call()` from `CALLERS` threads released at once; each answer, or the error it raised."""
    barrier = Barrier(CALLERS)

    def one(_: int) -> Any:
        barrier.wait()
        try:
            return call()
        except adaption.APIStatusError as exc:
            return exc

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(one, range(CALLERS)))


def test_simultaneous_launches_with_one_key_make_one_run_and_one_answer(
    idle: RunningServer, tmp_path: Path
) -> None:
    client = idle.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    tenant = idle.context.tenants.authenticate(client.api_key)
    assert tenant is not None
    spec = {"idempotency_key": "race-1"}
    answers = _race(
        client, lambda: client.datasets.adapt(dataset_id, column_mapping=MAPPING, job_specification=spec)
    )
    errors = [a for a in answers if isinstance(a, Exception)]
    assert errors == []
    assert len({a.run_id for a in answers}) == 1
    assert len({repr(a.to_dict()) for a in answers}) == 1  # the same answer, byte for byte
    with idle.context.store.session() as session:
        runs = list(session.scalars(select(Run).where(Run.dataset_id == dataset_id)))
    assert len(runs) == 1
    after = idle.context.tenants.authenticate(client.api_key)
    assert after is not None
    assert after.credits == pytest.approx(tenant.credits - float(runs[0].credits_reserved))


def test_simultaneous_translations_with_one_key_make_one_dataset(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    source = upload(client, tmp_path / "qa.csv", qa_rows(4), processing_mode="raw", column_mapping=MAPPING)
    answers = _race(
        client,
        lambda: client.datasets.translate(source, sample_rate=1, languages=["es"], idempotency_key="race-t"),
    )
    assert [a for a in answers if isinstance(a, Exception)] == []
    assert len({a.dataset_id for a in answers}) == 1
    assert sum(a.estimated_credits_consumed > 0 for a in answers) == 1  # one launch reserved, the rest replay
    assert len(list(client.datasets.list())) == 2  # the source and one translation


def test_simultaneous_combines_with_one_key_make_one_dataset(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    pair = [upload(client, tmp_path / f"{name}.csv", qa_rows(2)) for name in ("a", "b")]
    answers = _race(
        client,
        lambda: client.datasets.combine.create(dataset_ids=pair, name="merged", idempotency_key="race-c"),
    )
    assert [a for a in answers if isinstance(a, Exception)] == []
    assert len({a.dataset_id for a in answers}) == 1
    assert len(list(client.datasets.list(type="combined"))) == 1


def test_simultaneous_invents_with_one_key_make_one_dataset(idle: RunningServer) -> None:
    client = idle.client()
    answers = _race(
        client,
        lambda: client.datasets.invent(rows=4, domains=["finance"], name="inv", idempotency_key="race-i"),
    )
    assert [a for a in answers if isinstance(a, Exception)] == []
    assert len({a.id for a in answers}) == 1
    assert len(list(client.datasets.list())) == 1


def test_simultaneous_autoscientist_runs_with_one_key_make_one_run(
    idle: RunningServer, tmp_path: Path
) -> None:
    client = idle.client()
    source = upload(client, tmp_path / "qa.csv", qa_rows(10), processing_mode="raw", column_mapping=MAPPING)
    answers = _race(
        client,
        lambda: client.autoscientist.create(dataset_id=source, max_iterations=2, idempotency_key="race-a"),
    )
    assert [a for a in answers if isinstance(a, Exception)] == []
    (run_id,) = {a.to_dict()["id"] for a in answers}
    assert len(list(client.autoscientist.list())) == 1
    # Once that run ended, the key starts one new run, again whoever else sends it at the same time.
    client.autoscientist.cancel(run_id)
    again = _race(
        client,
        lambda: client.autoscientist.create(dataset_id=source, max_iterations=2, idempotency_key="race-a"),
    )
    assert [a for a in again if isinstance(a, Exception)] == []
    seconds = {a.to_dict()["id"] for a in again}
    assert len(seconds) == 1, seconds
    (second,) = seconds
    assert second != run_id
    assert len(list(client.autoscientist.list())) == 2
