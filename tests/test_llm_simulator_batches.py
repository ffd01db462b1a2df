"""The provider simulator's batch APIs, driven by the official OpenAI and Anthropic SDKs: what the SDKs send
is accepted, what the simulator answers parses into the SDKs' own types, and each request of a batch is
answered and billed like an online request (with the batch's id in the log)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import anthropic
import openai
import orjson
import pytest

from datamill.llm.simulator import ProviderSimulator


@pytest.fixture
async def sim() -> AsyncIterator[ProviderSimulator]:
    async with ProviderSimulator(seed=2, batch_delay_s=0.1) as simulator:
        yield simulator


@pytest.fixture
async def oai(sim: ProviderSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.openai_url, api_key="sk-test", max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(sim: ProviderSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=sim.base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


async def test_openai_sdk_runs_a_batch_from_upload_to_output_file(
    sim: ProviderSimulator, oai: openai.AsyncOpenAI
) -> None:
    client = oai
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt", "messages": [{"role": "user", "content": f"Say {i}."}]},
        }
        for i in range(3)
    ]
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = await client.files.create(file=("in.jsonl", data), purpose="batch")
    batch = await client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"name": "mine"},
    )
    assert batch.status == "in_progress"
    while batch.status != "completed":
        await asyncio.sleep(0.05)
        batch = await client.batches.retrieve(batch.id)
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 3
    assert batch.output_file_id is not None
    assert batch.error_file_id is None
    listed = await client.batches.list()
    assert [b.id for b in listed.data] == [batch.id]
    output = await client.files.content(batch.output_file_id)
    answers = {
        line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
        for line in map(orjson.loads, output.content.splitlines())
    }
    assert answers == {f"q{i}": f"[sim] Say {i}." for i in range(3)}
    items = [e for e in sim.log if e.batch == batch.id and e.operation is None]
    assert len(items) == 3
    assert all(e.billed is not None for e in items)
    assert math.isclose(sim.log.cost_usd(2.0, 4.0, batch_discount=0.5), sim.log.billed().cost_usd(1.0, 2.0))


async def test_openai_sdk_sees_errored_requests_in_the_error_file(
    sim: ProviderSimulator, oai: openai.AsyncOpenAI
) -> None:
    client = oai
    sim.set("bad_request", 1.0, when=lambda r: r.mentions("Say 1."))
    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt", "messages": [{"role": "user", "content": f"Say {i}."}]},
        }
        for i in range(2)
    ]
    uploaded = await client.files.create(
        file=("in.jsonl", b"".join(orjson.dumps(x) + b"\n" for x in lines)), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await asyncio.sleep(0.15)
    batch = await client.batches.retrieve(batch.id)
    assert batch.request_counts is not None
    assert batch.request_counts.failed == 1
    assert batch.error_file_id is not None
    errors = (await client.files.content(batch.error_file_id)).content.splitlines()
    (line,) = map(orjson.loads, errors)
    assert line["custom_id"] == "q1"
    assert line["response"]["status_code"] == 400


async def test_a_bad_batch_file_is_refused_with_a_400(
    sim: ProviderSimulator, oai: openai.AsyncOpenAI
) -> None:
    client = oai
    line = {"custom_id": "a", "method": "GET", "url": "/v1/models", "body": {}}
    uploaded = await client.files.create(file=("in.jsonl", orjson.dumps(line)), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="method must be POST"):
        await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


async def test_anthropic_sdk_runs_a_message_batch_and_reads_its_results(
    sim: ProviderSimulator, claude: anthropic.AsyncAnthropic
) -> None:
    client = claude
    sim.set("server_error", 1.0, when=lambda r: r.mentions("Say 3."))
    batch = await client.messages.batches.create(
        requests=[
            {
                "custom_id": f"q{i}",
                "params": {
                    "model": "claude",
                    "max_tokens": 100,
                    "messages": [{"role": "user", "content": f"Say {i}."}],
                },
            }
            for i in range(4)
        ]
    )
    assert batch.processing_status == "in_progress"
    while batch.processing_status != "ended":
        await asyncio.sleep(0.05)
        batch = await client.messages.batches.retrieve(batch.id)
    assert batch.request_counts.succeeded == 3
    assert batch.request_counts.errored == 1
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert results["q0"].type == "succeeded"
    assert results["q0"].message.content[0].text == "[sim] Say 0."  # type: ignore[union-attr]
    assert results["q3"].type == "errored"
    behaviours = [e.behaviour for e in sim.log if e.batch == batch.id and e.operation is None]
    assert behaviours == [None, None, None, "server_error"]
