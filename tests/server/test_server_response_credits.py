"""responses.create holds the credit rule of every paid job, through the official SDK against the provider
simulator, on SQLite and PostgreSQL: the most a call can cost is reserved before the model is called, in one
conditional update (so calls made at the same time never take the balance below zero), a call the balance
does not cover is refused with 402 naming the field and sends nothing to the model, and once the call is
over it is charged what the provider billed (cached input priced as billed) and the rest comes back: also
when the model call fails and when the client has gone."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import adaption
import httpx
import pytest
from pg_helpers import KINDS, database_url
from runs_helpers import FAKE_MODEL, run_settings, runs_server
from server_helpers import error_body, fields_of

from conftest import RunningServer
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.store.models import Tenant

SIM = "sim-openai/gpt"
INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0
CACHED_PRICE = INPUT_PRICE * 0.1  # the openai kind's default cache-read price


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=5, retry_after_s=0.05, slow_first_byte_s=0.5) as simulator:
        yield simulator


@pytest.fixture(scope="module", params=KINDS)
def srv(
    request: pytest.FixtureRequest, sim: ProviderSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("response-credits")
    routes = sim.write_routes(folder / "routes.yaml", input_price=INPUT_PRICE, output_price=OUTPUT_PRICE)
    env = {"DATAMILL_ROUTES": str(routes), "DATAMILL_MODEL": FAKE_MODEL}
    settings = run_settings(routes_path=routes)
    with (
        database_url(str(request.param), folder) as url,
        runs_server(folder / "data", settings, env=env, database_url=url) as running,
    ):
        yield running


@pytest.fixture(autouse=True)
def _clean(sim: ProviderSimulator) -> None:
    sim.set_rates()
    sim.log.clear()


def _tenant(srv: RunningServer, credits: float) -> tuple[adaption.Adaption, str]:
    issued = srv.context.tenants.create_key(f"resp-{time.monotonic_ns()}", credits=credits)
    return srv.client(key=issued.key), issued.tenant.id


def _balance(srv: RunningServer, tenant_id: str) -> float:
    with srv.context.store.session() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        return float(tenant.credits)


def _question(i: int) -> str:
    return f"Question {i:03d}: why is the sea salty?"  # every one the same length, so the same reservation


def _reservation(srv: RunningServer, max_output_tokens: int) -> float:
    """What a call of `_question`'s shape reserves, as a call of a well-off tenant reports it."""
    client, _ = _tenant(srv, 100.0)
    response = client.responses.create(model=SIM, input=_question(999), max_output_tokens=max_output_tokens)
    reserved = float(response["billing"]["reserved_credits"])
    assert reserved >= response["billing"]["credits"] > 0
    return reserved


def test_concurrent_calls_never_take_the_balance_below_zero(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    reserved = _reservation(srv, 40)
    start = round(3.5 * reserved, 6)  # covers three calls in flight at once, not four
    client, tenant_id = _tenant(srv, start)
    sim.log.clear()
    sim.set("slow_first_byte", 1.0)  # every call waits: the twenty are in flight together
    lowest = [start]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], _balance(srv, tenant_id))
            time.sleep(0.005)

    def call(i: int) -> dict[str, Any] | int:
        try:
            return dict(client.responses.create(model=SIM, input=_question(i), max_output_tokens=40))
        except adaption.APIStatusError as exc:
            return exc.status_code if "insufficient credits" in error_body(exc)["message"] else -1

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(call, range(20)))
    finally:
        done.set()
        watcher.join()
    answered = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert refused
    assert set(refused) == {402}
    assert 1 <= len(answered) <= 17
    assert lowest[0] >= 0
    assert len(sim.log) == len(answered)  # a refused call sent nothing to the model
    for response in answered:
        assert response["status"] == "completed"
        assert response["billing"]["reserved_credits"] >= response["billing"]["credits"]
        assert math.isclose(response["billing"]["reserved_credits"], reserved, rel_tol=0.05)
        assert math.isclose(
            response["billing"]["credits"], response["billing"]["cost_usd"] * 100, rel_tol=1e-4
        )
    billed = sim.log.billed().cost_usd(INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_PRICE)
    charged = sum(r["billing"]["credits"] for r in answered)
    assert math.isclose(charged, billed * 100, rel_tol=1e-4)
    assert math.isclose(_balance(srv, tenant_id), start - charged, abs_tol=1e-5)


def test_cached_input_is_charged_at_the_cached_price(srv: RunningServer, sim: ProviderSimulator) -> None:
    client, tenant_id = _tenant(srv, 50.0)
    # Begins with the tenant's id: no earlier call (of another database kind) has put it in the model's cache.
    instructions = f"{tenant_id}: " + "Answer as a marine chemist would, citing the processes involved. " * 80
    first = client.responses.create(model=SIM, instructions=instructions, input="Why is the sea salty?")
    second = client.responses.create(model=SIM, instructions=instructions, input="Why is the sea blue?")
    assert sim.log.entries[-1].body["max_tokens"] == 4096  # the route's default cap, which was reserved for
    cached = second["usage"]["input_tokens_details"]["cached_tokens"]
    assert first["usage"]["input_tokens_details"]["cached_tokens"] == 0 < cached
    cost = sim.log.entries[-1].billed.cost_usd(INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_PRICE)
    assert math.isclose(second["billing"]["cost_usd"], cost)
    assert math.isclose(second["billing"]["credits"], cost * 100, rel_tol=1e-4)
    charged = first["billing"]["credits"] + second["billing"]["credits"]
    assert math.isclose(_balance(srv, tenant_id), 50.0 - charged, abs_tol=1e-5)


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_model_call_gives_the_whole_reservation_back(
    srv: RunningServer, sim: ProviderSimulator, stream: bool
) -> None:
    client, tenant_id = _tenant(srv, 50.0)
    sim.set("bad_request", 1.0)
    if stream:
        with pytest.raises(adaption.APIStatusError, match="model call failed"):
            list(client.responses.create(model=SIM, input="Hello.", stream=True))
    else:
        with pytest.raises(adaption.InternalServerError) as caught:
            client.responses.create(model=SIM, input="Hello.")
        assert caught.value.status_code == 502
    assert len(sim.log) >= 1  # the model was called, and billed nothing
    assert _balance(srv, tenant_id) == 50.0


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_the_balance_does_not_cover_is_refused_naming_the_field(
    srv: RunningServer, sim: ProviderSimulator, stream: bool
) -> None:
    client, tenant_id = _tenant(srv, 0.5)
    with pytest.raises(adaption.APIStatusError) as caught:
        client.responses.create(model=SIM, input="Hi.", max_output_tokens=100_000, stream=stream)
    assert caught.value.status_code == 402
    body = error_body(caught.value)
    assert body["statusCode"] == 402
    assert "insufficient credits" in body["message"]
    assert fields_of(caught.value) == ["max_output_tokens"]
    assert "balance is 0.5" in body["errors"][0]["reason"]
    assert len(sim.log) == 0  # nothing was sent to the model
    assert _balance(srv, tenant_id) == 0.5
    answered = client.responses.create(model=SIM, input="Hi.", max_output_tokens=50, stream=False)
    assert answered["status"] == "completed"  # a smaller cap fits the same balance


def test_a_free_model_needs_no_credits(srv: RunningServer) -> None:
    client, tenant_id = _tenant(srv, 0.0)
    response = client.responses.create(model=FAKE_MODEL, input="Name a river in Spain.")
    assert response["billing"] == {"cost_usd": 0.0, "credits": 0.0, "reserved_credits": 0.0}
    assert _balance(srv, tenant_id) == 0.0


def test_a_client_that_leaves_before_the_answer_is_still_settled(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    client, tenant_id = _tenant(srv, 5.0)
    sim.set("slow_first_byte", 1.0)
    sim.slow_first_byte_s = 3.0  # the model answers long after the client has gone
    try:
        body = {"model": SIM, "input": "Tell me about tides.", "max_output_tokens": 60}
        headers = {"Authorization": f"Bearer {client.api_key}"}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.base_url}/api/v1/responses", json=body, headers=headers, timeout=0.2)
        deadline = time.monotonic() + 20
        while not (len(sim.log) == 1 and sim.log.entries[0].billed is not None):
            assert time.monotonic() < deadline, "the model was never called"
            time.sleep(0.02)
        assert _balance(srv, tenant_id) < 5.0  # reserved while the model answers
        cost = sim.log.billed().cost_usd(INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_PRICE)
        expected = 5.0 - round(cost * 100, 6)
        while not math.isclose(_balance(srv, tenant_id), expected, abs_tol=1e-6):
            assert time.monotonic() < deadline, "the call was not settled after its client left"
            time.sleep(0.05)
    finally:
        sim.slow_first_byte_s = 0.5


def test_a_streamed_call_is_settled_at_its_end(srv: RunningServer, sim: ProviderSimulator) -> None:
    client, tenant_id = _tenant(srv, 5.0)
    events = list(
        client.responses.create(model=SIM, input="Why is the sea salty?", max_output_tokens=60, stream=True)
    )
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed"
    cost = sim.log.billed().cost_usd(INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_PRICE)
    assert math.isclose(final["billing"]["credits"], cost * 100, rel_tol=1e-4)
    assert final["billing"]["reserved_credits"] > final["billing"]["credits"]
    assert math.isclose(_balance(srv, tenant_id), 5.0 - final["billing"]["credits"], abs_tol=1e-6)


def test_a_failed_call_the_provider_billed_is_charged_that_bill(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    client, tenant_id = _tenant(srv, 5.0)
    sim.set("reset", 1.0)  # every attempt is billed, then its connection drops before the answer is read
    with pytest.raises(adaption.InternalServerError) as caught:
        client.responses.create(model=SIM, input="Why is the sea salty?", max_output_tokens=60)
    assert caught.value.status_code == 502
    attempts = len(sim.log)
    assert attempts > 1
    charged = 5.0 - _balance(srv, tenant_id)
    # No answer was read, so each billed attempt is counted at its prompt's estimated input tokens.
    estimated = attempts * math.ceil(len("Why is the sea salty?") / 4) * INPUT_PRICE / 1_000_000
    assert math.isclose(charged, estimated * 100, rel_tol=1e-4)
    sim.set_rates()
    assert charged < _reservation(srv, 60)  # the rest of the reservation came back
