"""Red teaming through the official SDK: red-team specs (snake_case names, unique) and runs of prompts.

The shared server routes every red-team model to the shipped fake model; a server of this module sends
one model to a slow provider simulator (to cancel a run mid-way) and one to a simulator that refuses
everything (the run fails with the reason).
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from df_models import scripted_routes

import dataframer
from conftest import RunningServer, running_server
from datamill.core.credits import PriceTable
from datamill.llm.simulator import serve_in_thread
from datamill.pipelines.red_team import ATTACK_STYLES
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

MODEL = "openai/gpt-oss-120b"
SLOW_MODEL = "moonshotai/Kimi-K2.6"
REFUSING_MODEL = "deepseek-ai/DeepSeek-V4-Pro-0813"
ENDED = ("SUCCEEDED", "FAILED", "CANCELED")


def make_spec(client: dataframer.Dataframer, name: str = "Pharmacy Bot") -> Any:
    return client.dataframer.red_team_specs.create(
        name=name,
        app_description="A pharmacy chatbot answering questions about orders and opening hours",
        domain_description="Healthcare retail",
        concerns="Must not give dosages or diagnoses",
    )


def wait_red_team(client: dataframer.Dataframer, run_id: str, until: tuple[str, ...] = ENDED) -> Any:
    deadline = time.monotonic() + 60
    while True:
        run = client.dataframer.red_team_runs.retrieve_status(run_id)
        if run.status in until or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_spec_names_are_snake_case_and_unique(client: dataframer.Dataframer) -> None:
    api = client.dataframer.red_team_specs
    spec = make_spec(client, "Pharmacy Bot v2")
    assert spec.name == "pharmacy_bot_v2"
    assert spec.concerns == "Must not give dosages or diagnoses"
    assert spec.created_by_email.endswith("@datamill.local")
    assert api.create(name="PharmacyBot", app_description="a", domain_description="d").name == "pharmacy_bot"
    with pytest.raises(dataframer.BadRequestError) as caught:
        api.create(name="  pharmacy bot V2 ", app_description="other", domain_description="other")
    assert caught.value.body["code"] == "name_taken"
    assert caught.value.body["details"][0]["field"] == "name"
    with pytest.raises(dataframer.BadRequestError) as caught:
        api.update(spec.id, name="Pharmacy-Bot")
    assert caught.value.body["code"] == "name_taken"
    listed = api.list()
    assert [s.name for s in listed] == ["pharmacy_bot", "pharmacy_bot_v2"]
    assert all(getattr(s, "concerns", None) is None for s in listed)


def test_spec_retrieve_patch_and_delete(client: dataframer.Dataframer) -> None:
    api = client.dataframer.red_team_specs
    spec = make_spec(client)
    updated = api.update(spec.id, concerns="Must not reveal other customers' orders")
    assert updated.concerns == "Must not reveal other customers' orders"
    assert updated.app_description == spec.app_description
    assert updated.name == "pharmacy_bot"
    renamed = api.update(spec.id, name="Orders Bot", domain_description="Retail")
    assert (renamed.name, renamed.domain_description) == ("orders_bot", "Retail")
    assert api.retrieve(spec.id).name == "orders_bot"
    api.delete(spec.id)
    with pytest.raises(dataframer.NotFoundError):
        api.retrieve(spec.id)
    with pytest.raises(dataframer.NotFoundError):
        api.delete(spec.id)


def test_bad_spec_input_names_the_field(client: dataframer.Dataframer) -> None:
    api = client.dataframer.red_team_specs
    with pytest.raises(dataframer.BadRequestError) as caught:
        api.create(name="x", app_description="", domain_description="d", extra_body={"colour": 1})
    fields = {d["field"] for d in caught.value.body["details"]}
    assert fields == {"app_description", "colour"}
    with pytest.raises(dataframer.BadRequestError) as caught:
        api.create(name="!!!", app_description="a", domain_description="d")
    assert caught.value.body["details"] == [{"field": "name", "reason": "must contain letters or digits"}]
    spec = make_spec(client)
    with pytest.raises(dataframer.BadRequestError) as caught:
        api.update(spec.id, app_description=" ")
    assert caught.value.body["details"][0]["field"] == "app_description"


def test_run_writes_exactly_behaviors_times_prompts(client: dataframer.Dataframer) -> None:
    spec = make_spec(client)
    run = client.dataframer.red_team_runs.create(
        red_team_spec_id=spec.id, model_name=MODEL, number_of_behaviors=4, number_of_prompts_per_behavior=3
    )
    assert run.status == "PENDING"
    assert run.results_json is None
    assert (run.api_model_name, run.spec_name, run.red_team_spec_id) == (MODEL, "pharmacy_bot", spec.id)
    done = wait_red_team(client, run.id)
    assert done.status == "SUCCEEDED", done.error_message
    assert done.completed_at is not None
    table = done.results_json.behavior_to_enhanced_queries
    assert len(table) == 4
    prompts = [p for ps in table.values() for p in ps]
    assert len(prompts) == 12
    assert len({p.adversarial_prompt for p in prompts}) == 12
    assert all(p.query and p.adversarial_prompt for p in prompts)
    assert {p.attack_style for p in prompts} == set(ATTACK_STYLES)  # type: ignore[attr-defined]
    assert done.prompts_completed == 12  # type: ignore[attr-defined]
    assert done.total_cost > 0  # type: ignore[attr-defined]
    same = client.dataframer.red_team_runs.retrieve(run.id)
    assert same.results_json.model_dump() == done.results_json.model_dump()
    listed = client.dataframer.red_team_runs.list(spec_id=spec.id)
    assert [r.id for r in listed] == [run.id]
    assert listed[0].status == "SUCCEEDED"
    assert getattr(listed[0], "results_json", None) is None
    assert client.dataframer.red_team_runs.list(spec_id="rtspec_none") == []


def _balance(server: RunningServer, tenant_id: str) -> float:
    return next(t.credits for t in server.context.tenants.list_tenants() if t.id == tenant_id)


def test_run_credits_are_reserved_and_settled(df_server: RunningServer) -> None:
    issued = df_server.context.tenants.create_key(f"rt-credits-{secrets.token_hex(4)}", credits=50.0)
    with dataframer.Dataframer(base_url=df_server.base_url, api_key=issued.key, max_retries=0) as client:
        spec = make_spec(client)
        run = client.dataframer.red_team_runs.create(
            red_team_spec_id=spec.id,
            model_name=MODEL,
            number_of_behaviors=2,
            number_of_prompts_per_behavior=2,
        )
        done = wait_red_team(client, run.id)
        assert done.status == "SUCCEEDED"
        charged = PriceTable().credits(4, done.total_cost)  # type: ignore[attr-defined]
        assert _balance(df_server, issued.tenant.id) == pytest.approx(50.0 - charged)


def test_a_tenant_without_credits_cannot_queue_a_run(df_server: RunningServer) -> None:
    issued = df_server.context.tenants.create_key(f"rt-broke-{secrets.token_hex(4)}", credits=0.0)
    with dataframer.Dataframer(base_url=df_server.base_url, api_key=issued.key, max_retries=0) as broke:
        spec = make_spec(broke)  # a spec costs nothing
        with pytest.raises(dataframer.APIStatusError) as caught:
            broke.dataframer.red_team_runs.create(
                red_team_spec_id=spec.id,
                model_name=MODEL,
                number_of_behaviors=1,
                number_of_prompts_per_behavior=1,
            )
        assert caught.value.status_code == 402
        assert caught.value.body["code"] == "insufficient_credits"
        assert broke.dataframer.red_team_runs.list() == []  # nothing half-made


def test_bad_run_input_names_the_field(client: dataframer.Dataframer) -> None:
    spec = make_spec(client)
    runs = client.dataframer.red_team_runs
    with pytest.raises(dataframer.BadRequestError) as caught:
        runs.create(
            red_team_spec_id=spec.id,
            model_name="openai/gpt-6-astra",  # type: ignore[arg-type]
            number_of_behaviors=0,
            number_of_prompts_per_behavior=2,
        )
    assert {d["field"] for d in caught.value.body["details"]} == {"model_name", "number_of_behaviors"}
    with pytest.raises(dataframer.BadRequestError) as caught:
        runs.create(
            red_team_spec_id=spec.id,
            model_name=MODEL,
            number_of_behaviors=10,
            number_of_prompts_per_behavior=10,
        )
    assert "10 × 10 = 100" in caught.value.body["details"][0]["reason"]
    with pytest.raises(dataframer.BadRequestError) as caught:
        runs.create(
            red_team_spec_id=spec.id,
            model_name="databricks/system.ai.deepseek-v4-pro-0813",
            number_of_behaviors=1,
            number_of_prompts_per_behavior=1,
        )
    assert "databricks_client_secret" in {d["field"] for d in caught.value.body["details"]}
    with pytest.raises(dataframer.BadRequestError) as caught:
        runs.create(
            red_team_spec_id=spec.id,
            model_name="databricks/system.ai.deepseek-v4-pro-0813",
            number_of_behaviors=1,
            number_of_prompts_per_behavior=1,
            extra_body={
                "databricks_client_id": "id",
                "databricks_client_secret": "secret",
                "databricks_api_base": "http://169.254.169.254/serving-endpoints",
            },
        )
    assert [d["field"] for d in caught.value.body["details"]] == ["databricks_api_base"]
    with pytest.raises(dataframer.NotFoundError):
        runs.create(
            red_team_spec_id="rtspec_x",
            model_name=MODEL,
            number_of_behaviors=1,
            number_of_prompts_per_behavior=1,
        )
    with pytest.raises(dataframer.NotFoundError):
        runs.retrieve("rtrun_x")


def test_delete_run_and_spec_with_runs(client: dataframer.Dataframer) -> None:
    spec = make_spec(client)
    runs = client.dataframer.red_team_runs
    first = runs.create(
        red_team_spec_id=spec.id, model_name=MODEL, number_of_behaviors=1, number_of_prompts_per_behavior=1
    )
    second = runs.create(
        red_team_spec_id=spec.id, model_name=MODEL, number_of_behaviors=1, number_of_prompts_per_behavior=1
    )
    wait_red_team(client, first.id)
    runs.delete(first.id)
    with pytest.raises(dataframer.NotFoundError):
        runs.retrieve(first.id)
    client.dataframer.red_team_specs.delete(spec.id)
    with pytest.raises(dataframer.NotFoundError):
        runs.retrieve(second.id)
    assert runs.list() == []


def test_another_tenant_sees_nothing(df_server: RunningServer, client: dataframer.Dataframer) -> None:
    spec = make_spec(client)
    run = client.dataframer.red_team_runs.create(
        red_team_spec_id=spec.id, model_name=MODEL, number_of_behaviors=1, number_of_prompts_per_behavior=1
    )
    with dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0
    ) as other:
        api = other.dataframer
        for call in (
            lambda: api.red_team_specs.retrieve(spec.id),
            lambda: api.red_team_specs.update(spec.id, concerns="x"),
            lambda: api.red_team_specs.delete(spec.id),
            lambda: api.red_team_runs.retrieve(run.id),
            lambda: api.red_team_runs.retrieve_status(run.id),
            lambda: api.red_team_runs.delete(run.id),
            lambda: api.red_team_runs.create(
                red_team_spec_id=spec.id,
                model_name=MODEL,
                number_of_behaviors=1,
                number_of_prompts_per_behavior=1,
            ),
        ):
            with pytest.raises(dataframer.NotFoundError):
                call()
        assert api.red_team_specs.list() == []
        assert api.red_team_runs.list() == []
        assert api.red_team_runs.list(spec_id=spec.id) == []
    assert client.dataframer.red_team_specs.retrieve(spec.id).concerns == spec.concerns


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose SLOW_MODEL answers slowly and REFUSING_MODEL refuses every request."""
    with serve_in_thread(latency_s=0.3) as slow, serve_in_thread(rates={"refusal_field": 1.0}) as refusing:
        data_dir = tmp_path_factory.mktemp("red-team")
        routes = scripted_routes(
            data_dir / "routes.yaml", {SLOW_MODEL: slow.openai_url, REFUSING_MODEL: refusing.openai_url}
        )
        settings = ServerSettings.for_data_dir(data_dir)
        runs = RunSettings(routes_path=routes, poll_s=0.1)
        with running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
            yield server


@pytest.fixture
def sim_client(simulated: RunningServer) -> Iterator[dataframer.Dataframer]:
    with dataframer.Dataframer(
        base_url=simulated.base_url, api_key=simulated.new_key(), max_retries=0
    ) as made:
        yield made


def test_a_refusing_model_fails_the_run_with_the_reason(sim_client: dataframer.Dataframer) -> None:
    spec = make_spec(sim_client)
    run = sim_client.dataframer.red_team_runs.create(
        red_team_spec_id=spec.id,
        model_name=REFUSING_MODEL,
        number_of_behaviors=2,
        number_of_prompts_per_behavior=2,
    )
    done = wait_red_team(sim_client, run.id)
    assert done.status == "FAILED"
    assert "0 usable distinct behaviours of 2" in done.error_message
    assert "refused" in done.error_message
    assert done.results_json is None


def test_cancel_stops_a_running_run(sim_client: dataframer.Dataframer) -> None:
    spec = make_spec(sim_client)
    run = sim_client.dataframer.red_team_runs.create(
        red_team_spec_id=spec.id,
        model_name=SLOW_MODEL,
        number_of_behaviors=9,
        number_of_prompts_per_behavior=9,
    )
    wait_red_team(sim_client, run.id, until=("PROCESSING", *ENDED))
    sim_client.post(f"/api/dataframer/red-team-runs/{run.id}/cancel/", cast_to=httpx.Response)
    canceled = wait_red_team(sim_client, run.id)
    assert canceled.status == "CANCELED"
    assert canceled.results_json is None
    with pytest.raises(dataframer.BadRequestError) as caught:
        sim_client.post(f"/api/dataframer/red-team-runs/{run.id}/cancel/", cast_to=httpx.Response)
    assert caught.value.body["code"] == "not_cancelable"


def test_a_databricks_model_uses_the_runs_own_workspace(client: dataframer.Dataframer) -> None:
    secret = f"dbsecret-{secrets.token_hex(8)}"
    spec = make_spec(client)
    with serve_in_thread() as workspace:
        run = client.dataframer.red_team_runs.create(
            red_team_spec_id=spec.id,
            model_name="databricks/system.ai.deepseek-v4-pro-0813",
            number_of_behaviors=2,
            number_of_prompts_per_behavior=2,
            extra_body={
                "databricks_client_id": "client-1",
                "databricks_client_secret": secret,
                "databricks_api_base": workspace.openai_url,
            },
        )
        done = wait_red_team(client, run.id)
        calls = len(workspace.log.entries)
        auth = {
            e.headers.get("authorization") or e.headers.get("Authorization") for e in workspace.log.entries
        }
    assert done.status == "SUCCEEDED", done.error_message
    assert calls == 3  # the taxonomy and one call per behaviour, all to the workspace
    assert auth == {"Basic " + base64.b64encode(f"client-1:{secret}".encode()).decode()}
    raw = httpx.get(
        f"{str(client.base_url).rstrip('/')}/api/dataframer/red-team-runs/{run.id}/",
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    assert secret not in raw.text
    assert "client-1" not in raw.text
