"""Custom evaluations are paid jobs: created, they reserve credits (402 and nothing recorded when the balance
does not cover them); ended, they are charged what their judge calls cost and give back the rest, once."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from server_helpers import qa_rows, wait_for, write_rows
from test_server_custom_evals import RUBRIC, Setup

from conftest import RunningServer, running_server
from datamill.core.credits import PriceTable
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.services.generation.credits import InsufficientCreditsError
from datamill.services.settings.server import ServerSettings
from datamill.store.models import CustomEval, Tenant


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose judge is the deterministic fake model (free)."""
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("eval-credits"))
    with running_server(settings, env={"DATAMILL_MODEL": "fake/judge"}) as running:
        yield running


def _tenant(server: RunningServer, credits: float) -> tuple[adaption.Adaption, str]:
    issued = server.context.tenants.create_key(f"ce-credits-{secrets.token_hex(4)}", credits=credits)
    return server.client(key=issued.key), issued.tenant.id


def _balance(server: RunningServer, tenant_id: str) -> float:
    return next(t.credits for t in server.context.tenants.list_tenants() if t.id == tenant_id)


def _dataset(client: adaption.Adaption, tmp_path: Path) -> str:
    done = client.datasets.upload_file(write_rows(tmp_path / "qa.csv", qa_rows(3)))
    wait_for(client, done.dataset_id)
    return done.dataset_id


def test_a_tenant_without_credits_cannot_create_a_custom_evaluation(
    server: RunningServer, tmp_path: Path
) -> None:
    client, tenant_id = _tenant(server, 0.0)
    dataset_id = _dataset(client, tmp_path)
    with pytest.raises(adaption.APIStatusError) as caught:
        client.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC)
    assert caught.value.status_code == 402
    assert "insufficient credits" in str(caught.value.body)
    assert client.datasets.custom_evals.list(dataset_id).items == []
    assert _balance(server, tenant_id) == 0.0


def test_a_free_evaluation_gives_its_whole_reservation_back(server: RunningServer, tmp_path: Path) -> None:
    client, tenant_id = _tenant(server, 5.0)
    dataset_id = _dataset(client, tmp_path)
    made = client.datasets.custom_evals.create(dataset_id, judge_prompt=RUBRIC)
    deadline = time.monotonic() + 30
    while True:
        found = client.datasets.custom_evals.get(made.custom_eval_id, dataset_id=dataset_id)
        if found.status in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.02)
    assert _balance(server, tenant_id) == 5.0  # the fake judge costs nothing


def _priced(setup: Setup) -> None:
    """The judge at a price that makes its few calls cost real money."""
    entry = {"provider": "fake", "model": "judge", "api_key_env": None, "input_price": 5000.0}
    routing = Routing.from_dict({"routes": {"fake/judge": entry}}, source="test")
    setup.service._gateway_factory = lambda: Gateway(routing, providers={"fake": setup.fake})


def _credits(setup: Setup) -> float:
    with setup.store.session() as session:
        tenant = session.get(Tenant, setup.tenant_id)
        assert tenant is not None
        return float(tenant.credits)


def _row(setup: Setup, eval_id: str) -> Any:
    with setup.store.session() as session:
        row = session.get(CustomEval, eval_id)
        assert row is not None
        return (float(row.credits_reserved), row.credits_used)


async def test_an_evaluation_reserves_then_is_charged_its_cost_once(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    _priced(setup)
    before = _credits(setup)
    made = setup.create()
    reserved, used = _row(setup, made.id)
    assert reserved == PriceTable().minimum_credits
    assert used is None
    assert _credits(setup) == before - reserved
    await setup.service.run(made.id)
    await setup.service.run(made.id)  # an ended evaluation is neither run nor settled again
    _, used = _row(setup, made.id)
    assert used > reserved  # the judge calls cost more than the minimum
    assert _credits(setup) == pytest.approx(before - used)


async def test_an_unaffordable_evaluation_is_refused_and_not_recorded(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    with setup.store.session() as session:
        tenant = session.get(Tenant, setup.tenant_id)
        assert tenant is not None
        tenant.credits = 0.5
    with pytest.raises(InsufficientCreditsError):
        setup.create()
    assert setup.service.list_for_dataset(setup.tenant_id, setup.dataset_id) == []
    assert _credits(setup) == 0.5
