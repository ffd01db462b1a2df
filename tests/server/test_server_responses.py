"""responses.create (JSON and streamed), retrieve, delete and input_items through the official SDK, against
the shipped fake model and the provider simulator: answers, conversations continued by
previous_response_id, refusals, cuts, empty replies, provider errors, credits and bad requests."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from runs_helpers import FAKE_MODEL, MAPPING, run_settings, runs_server, upload
from server_helpers import error_body, fields_of

from conftest import RunningServer
from datamill.llm.simulator import ProviderSimulator, serve_in_thread

SIM = "sim-openai/gpt"
SIM_ANTHROPIC = "sim-anthropic/claude"
INPUT_PRICE, OUTPUT_PRICE = 3.0, 15.0


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=3, retry_after_s=0.05) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def srv(sim: ProviderSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("responses")
    routes = sim.write_routes(folder / "routes.yaml", input_price=INPUT_PRICE, output_price=OUTPUT_PRICE)
    env = {"DATAMILL_ROUTES": str(routes), "DATAMILL_MODEL": FAKE_MODEL}
    with runs_server(folder, run_settings(routes_path=routes), env=env) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(sim: ProviderSimulator) -> None:
    sim.set_rates()
    sim.log.clear()


def _text(response: dict[str, Any]) -> str:
    (item,) = response["output"]
    (part,) = item["content"]
    assert part["type"] == "output_text"
    return str(part["text"])


def _credits(srv: RunningServer, client: adaption.Adaption) -> float:
    key = client.api_key
    tenant = srv.context.tenants.authenticate(key)
    assert tenant is not None
    return tenant.credits


def test_the_fake_model_answers_a_string_input(srv: RunningServer) -> None:
    client = srv.client()
    response = client.responses.create(model=FAKE_MODEL, input="Name a river in Spain.")
    assert response["object"] == "response"
    assert response["status"] == "completed"
    assert response["id"].startswith("resp_")
    assert _text(response) == response["output_text"] != ""
    assert response["store"] is False
    with pytest.raises(adaption.NotFoundError):  # not stored unless asked
        client.responses.retrieve(response["id"])


def test_the_simulator_answers_with_instructions_and_bills_what_it_billed(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    client = srv.client()
    before = _credits(srv, client)
    response = client.responses.create(
        model=SIM,
        instructions="Answer in one word.",
        input=[
            {"role": "developer", "content": "Be terse."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Name a river "},
                    {"type": "input_text", "text": "in Spain."},
                ],
            },
        ],
        max_output_tokens=50,
        temperature=0.2,
    )
    assert _text(response) == "[sim] Name a river in Spain."
    (entry,) = sim.log
    assert entry.body["messages"][0] == {"role": "system", "content": "Answer in one word.\n\nBe terse."}
    assert entry.body["temperature"] == 0.2
    billed = sim.log.billed()
    assert response["usage"]["input_tokens"] == billed.input_tokens
    assert response["usage"]["output_tokens"] == billed.output_tokens
    cost = billed.cost_usd(INPUT_PRICE, OUTPUT_PRICE)
    assert math.isclose(response["billing"]["cost_usd"], cost)
    assert math.isclose(before - _credits(srv, client), cost * 100, rel_tol=1e-4)


def test_a_stored_response_is_continued_retrieved_paged_and_deleted(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    client = srv.client()
    first = client.responses.create(
        model=SIM_ANTHROPIC,
        store=True,
        input=[
            {"role": "user", "content": "First question."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Second question."},
        ],
    )
    assert client.responses.retrieve(first["id"]) == first
    second = client.responses.create(
        model=SIM_ANTHROPIC, input="Third question.", previous_response_id=first["id"], store=True
    )
    assert _text(second) == "[sim] Third question."
    turns = sim.log.entries[-1].body["messages"]
    assert [
        (t["role"], t["content"] if isinstance(t["content"], str) else t["content"][0]["text"]) for t in turns
    ] == [
        ("user", "First question."),
        ("assistant", "Noted."),
        ("user", "Second question."),
        ("assistant", "[sim] Second question."),
        ("user", "Third question."),
    ]
    items = list(client.responses.input_items.list(first["id"], order="asc", limit=1))
    assert [i["role"] for i in items] == ["user", "assistant", "user"]
    assert items[0]["content"] == [{"type": "input_text", "text": "First question."}]
    newest = client.responses.input_items.list(first["id"], limit=2)
    assert [i["role"] for i in newest.data] == ["user", "assistant"]
    assert newest.has_more is True
    with pytest.raises(adaption.NotFoundError):  # another tenant's response is not there
        srv.client().responses.retrieve(first["id"])
    deleted = client.responses.delete(first["id"])
    assert (deleted.id, deleted.object, deleted.deleted) == (first["id"], "response.deleted", True)
    with pytest.raises(adaption.NotFoundError):
        client.responses.retrieve(first["id"])
    with pytest.raises(adaption.BadRequestError) as caught:
        client.responses.create(model=SIM, input="More.", previous_response_id=first["id"])
    assert fields_of(caught.value) == ["previous_response_id"]


def test_a_streamed_response_sends_events_and_ends_with_done(srv: RunningServer) -> None:
    client = srv.client()
    question = "Why is the sea salty? " * 10
    events = list(client.responses.create(model=SIM, input=question, stream=True))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert kinds[1:4] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1
    final = events[-1]["response"]
    assert "".join(deltas) == _text(final) == "[sim] " + " ".join(question.split())[:200]
    assert [e["sequence_number"] for e in events] == list(range(1, len(events) + 1))


@pytest.mark.parametrize(
    ("behaviour", "status", "detail"),
    [
        ("refusal_field", "completed", None),
        ("truncation", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
        ("empty", "failed", None),
    ],
)
def test_replies_that_are_not_answers_get_their_status(
    srv: RunningServer, sim: ProviderSimulator, behaviour: str, status: str, detail: Any
) -> None:
    sim.set(behaviour, 1.0)
    response = srv.client().responses.create(model=SIM, input="Tell me a story.")
    assert response["status"] == status
    assert response["incomplete_details"] == detail
    assert response["output_text"] == ""
    if behaviour == "refusal_field":
        assert response["output"][0]["content"][0]["type"] == "refusal"
    else:
        assert response["output"] == []
    if behaviour == "empty":
        assert response["error"]["code"] == "empty_reply"
    assert response["billing"]["cost_usd"] >= 0
    assert {e.behaviour for e in sim.log} == {behaviour}


def test_a_provider_that_keeps_failing_answers_502_and_an_error_event(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    sim.set("bad_request", 1.0)
    client = srv.client()
    with pytest.raises(adaption.InternalServerError) as caught:
        client.responses.create(model=SIM, input="Hello.")
    assert caught.value.status_code == 502
    assert "model call failed" in error_body(caught.value)["message"]
    with pytest.raises(adaption.APIStatusError) as streamed:
        list(client.responses.create(model=SIM, input="Hello again.", stream=True))
    assert "model call failed" in str(streamed.value)


def test_bad_requests_name_their_fields(srv: RunningServer) -> None:
    client = srv.client()
    with pytest.raises(adaption.BadRequestError) as caught:
        client.responses.create(
            model=SIM,
            input=[
                {"role": "robot", "content": "x"},
                {"role": "user", "content": [{"type": "input_image", "image_url": "u"}]},
            ],
            temperature=3,
            max_output_tokens=0,
            tools=[{"type": "mcp", "server_label": "crm"}],
            background=True,
        )
    assert fields_of(caught.value) == [
        "input[0].role",
        "input[1].content[0].type",
        "max_output_tokens",
        "temperature",
        "tools[0].type",
        "background",
    ]
    with pytest.raises(adaption.BadRequestError) as unknown:
        client.responses.create(model="nobody/model", input="Hi.")
    assert fields_of(unknown.value) == ["model"]
    with pytest.raises(adaption.BadRequestError) as paging:
        client.responses.input_items.list("resp_missing", limit=0)
    assert fields_of(paging.value) == ["limit"]


def test_a_tenant_without_credits_is_refused_before_any_call(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    key = srv.context.tenants.create_key("responses-broke", credits=0).key
    with pytest.raises(adaption.APIStatusError) as caught:
        srv.client(key=key).responses.create(model=SIM, input="Hi.")
    assert caught.value.status_code == 402
    assert len(sim.log) == 0


ROWS = [
    {"question": "How long should rye sourdough proof?", "answer": "About four hours at room temperature."},
    {"question": "Which planet has the largest moon?", "answer": "Jupiter, with Ganymede."},
]


def _dataset(client: adaption.Adaption, folder: Path) -> str:
    return upload(client, folder / "facts.jsonl", ROWS, processing_mode="raw", column_mapping=MAPPING)


def test_file_search_gives_the_model_the_rows_that_match(
    srv: RunningServer, sim: ProviderSimulator, tmp_path: Path
) -> None:
    client = srv.client()
    dataset_id = _dataset(client, tmp_path)
    response = client.responses.create(
        model=SIM,
        input="How long does rye sourdough need to proof?",
        tools=[{"type": "file_search", "dataset_ids": [dataset_id]}],
    )
    call, message = response["output"]
    assert call["type"] == "file_search_call"
    assert call["queries"] == ["How long does rye sourdough need to proof?"]
    (hit,) = call["results"]  # the planet row shares no word with the question
    assert (hit["file_id"], hit["row"]) == (dataset_id, 0)
    assert "About four hours" in hit["text"]
    assert message["content"][0]["text"] == "[sim] How long does rye sourdough need to proof?"
    system = sim.log.entries[-1].body["messages"][0]
    assert system["role"] == "system"
    assert "About four hours at room temperature." in system["content"]
    assert "Jupiter" not in system["content"]
    assert response["tools"] == [{"type": "file_search", "dataset_ids": [dataset_id]}]


def test_file_search_leaves_out_rows_found_through_one_incidental_word(
    srv: RunningServer, sim: ProviderSimulator, tmp_path: Path
) -> None:
    client = srv.client()
    dataset_id = _dataset(client, tmp_path)
    # "long" is the rye row's only word of five searched for: BM25 finds it, the relevance floor drops it.
    question = "How long does a marathon race take for beginners?"
    response = client.responses.create(
        model=SIM, input=question, tools=[{"type": "file_search", "dataset_ids": [dataset_id]}]
    )
    assert response["output"][0]["results"] == []
    assert "found nothing relevant" in sim.log.entries[-1].body["messages"][0]["content"]


def test_file_search_searches_every_dataset_and_can_be_turned_off(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = _dataset(client, tmp_path)
    tools = [{"type": "file_search"}]
    found = client.responses.create(model=FAKE_MODEL, input="Which planet has the largest moon?", tools=tools)
    assert [r["file_id"] for r in found["output"][0]["results"]] == [dataset_id]
    off = client.responses.create(model=FAKE_MODEL, input="Which planet?", tools=tools, tool_choice="none")
    assert [item["type"] for item in off["output"]] == ["message"]
    events = list(client.responses.create(model=FAKE_MODEL, input="Largest moon?", tools=tools, stream=True))
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["file_search_call", "message"]
    with pytest.raises(adaption.NotFoundError):  # like another tenant's dataset
        client.responses.create(
            model=FAKE_MODEL, input="Hi.", tools=[{"type": "file_search", "dataset_ids": ["ds_missing"]}]
        )


def test_a_client_that_leaves_mid_stream_still_gets_its_call_finished_and_stored(
    srv: RunningServer, sim: ProviderSimulator
) -> None:
    sim.set("slow_first_byte", 1.0)  # the model answers after a second: the client is gone by then
    client = srv.client()
    body = {"model": SIM, "input": "Tell me about tides.", "stream": True, "store": True}
    headers = {"Authorization": f"Bearer {client.api_key}"}
    with httpx.stream("POST", f"{srv.base_url}/api/v1/responses", json=body, headers=headers) as streamed:
        first = next(line for line in streamed.iter_lines() if line.startswith("data: "))
    response_id = json.loads(first.removeprefix("data: "))["response"]["id"]
    deadline = time.monotonic() + 20
    while True:
        try:
            stored = client.responses.retrieve(response_id)
            break
        except adaption.NotFoundError:
            assert time.monotonic() < deadline, "the call was not finished after the client left"
            time.sleep(0.1)
    assert stored["output_text"] == "[sim] Tell me about tides."
    assert stored["billing"]["cost_usd"] > 0
