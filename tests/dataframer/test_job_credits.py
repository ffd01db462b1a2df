"""Credits of the paid generation jobs: spec analyses, generation runs and evaluations reserve credits when
queued (402 and nothing queued when the balance does not cover them), are charged what they cost when they
end, and give back the rest; a cancelled run gives back its whole reservation."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from df_waits import wait_run, wait_spec

import dataframer
from conftest import RunningServer
from datamill.core.credits import PriceTable
from datamill.services.generation.credits import InsufficientCreditsError, reserve
from datamill.services.tenants import TenantService
from datamill.store import Store
from datamill.store.generation_models import GENERATION_JOB
from datamill.store.jobs import add_job, cancel_job
from datamill.store.models import Tenant


def _client(server: RunningServer, credits: float) -> tuple[dataframer.Dataframer, str]:
    issued = server.context.tenants.create_key(f"credits-{secrets.token_hex(4)}", credits=credits)
    made = dataframer.Dataframer(base_url=server.base_url, api_key=issued.key, max_retries=0)
    return made, issued.tenant.id


def _balance(server: RunningServer, tenant_id: str) -> float:
    return next(t.credits for t in server.context.tenants.list_tenants() if t.id == tenant_id)


@pytest.fixture
def funded(df_server: RunningServer) -> Iterator[tuple[dataframer.Dataframer, str]]:
    made, tenant_id = _client(df_server, 50.0)
    yield made, tenant_id
    made.close()


def test_a_tenant_without_credits_cannot_queue_a_spec_analysis(df_server: RunningServer) -> None:
    broke, _ = _client(df_server, 0.0)
    with pytest.raises(dataframer.APIStatusError) as caught:
        broke.dataframer.specs.create(name="no-credit", generation_objectives="Short support emails")
    assert caught.value.status_code == 402
    assert caught.value.body["code"] == "insufficient_credits"
    assert broke.dataframer.specs.list() == []  # nothing half-made


def test_a_run_larger_than_the_balance_is_refused_before_anything_is_queued(
    df_server: RunningServer, funded: tuple[dataframer.Dataframer, str]
) -> None:
    client, tenant_id = funded
    spec = client.dataframer.specs.create(name="big", generation_objectives="Short support emails")
    assert wait_spec(client, spec.id).status == "SUCCEEDED"
    before = _balance(df_server, tenant_id)
    needed = PriceTable().credits(20_000, 0.0)
    assert needed > before
    with pytest.raises(dataframer.APIStatusError) as caught:
        client.dataframer.runs.create(spec_id=spec.id, number_of_samples=20_000)
    assert caught.value.status_code == 402
    assert f"{needed:g} credits" in caught.value.body["error"]
    assert client.dataframer.runs.list() == []
    assert _balance(df_server, tenant_id) == before


def test_jobs_are_charged_what_they_cost_and_the_rest_comes_back(
    df_server: RunningServer, funded: tuple[dataframer.Dataframer, str]
) -> None:
    client, tenant_id = funded
    spec = client.dataframer.specs.create(name="paid", generation_objectives="Short support emails")
    assert wait_spec(client, spec.id).status == "SUCCEEDED"
    # The fake model is free: the analysis charges nothing and its reservation came back.
    assert _balance(df_server, tenant_id) == 50.0
    run = client.dataframer.runs.create(
        spec_id=spec.id,
        number_of_samples=2,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake's copies
    )
    assert wait_run(client, run.id).status == "SUCCEEDED"
    assert _balance(df_server, tenant_id) == 50.0 - PriceTable().credits(2, 0.0)


def test_a_cancelled_job_gives_back_its_whole_reservation(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    tenant_id = TenantService(store).create_key("acme", credits=10.0).tenant.id
    with store.session() as session:
        reserved = reserve(session, tenant_id, 4.0, "a run")
        job_id = add_job(session, tenant_id, GENERATION_JOB, "genrun_x", {}, credits_reserved=reserved).id
    with store.session() as session:
        assert session.get(Tenant, tenant_id).credits == 6.0
        assert cancel_job(session, tenant_id, job_id)
    with store.session() as session:
        assert session.get(Tenant, tenant_id).credits == 10.0
        assert not cancel_job(session, tenant_id, job_id)  # a second cancel gives nothing back again
    with store.session() as session:
        assert session.get(Tenant, tenant_id).credits == 10.0
        with pytest.raises(InsufficientCreditsError, match="needs 11 credits and the balance is 10"):
            reserve(session, tenant_id, 11.0, "a run")
    store.close()
