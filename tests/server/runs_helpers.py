"""Helpers the run tests share: a server whose runs use the shipped fake model, uploads, and waiting.

`runs_server` serves `create_app` around a context built with explicit `RunSettings` (the fake model, small
batches, a fast worker poll), on a loopback port, through the suite's `running_server`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adaption
import httpx
import yaml
from server_helpers import wait_for, write_rows

from conftest import RunningServer, running_server
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.llm.providers.fake import fake_value
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from datamill.services.settings.tree import load_settings

FAKE_MODEL = "fake/test-model"
LOOP_MODEL = "loop/model"
MAPPING = {"prompt": "question", "completion": "answer"}
#: The words the loopback models build their questions and answers from.
LEGAL_WORDS = [
    "tax",
    "refund",
    "contract",
    "clause",
    "lease",
    "invoice",
    "deadline",
    "penalty",
    "audit",
    "filing",
    "statute",
    "court",
]


def run_settings(**overrides: Any) -> RunSettings:
    values: dict[str, Any] = {"model": FAKE_MODEL, "batch_size": 4, "poll_s": 0.2, "eval_sample_size": 10}
    return RunSettings(**(values | overrides))


@contextmanager
def runs_server(
    data_dir: Path, runs: RunSettings | None = None, env: Mapping[str, str] | None = None, **settings: Any
) -> Iterator[RunningServer]:
    """Serve the app with `runs` (default: `run_settings()`) on a free loopback port until the block ends;
    the gateway and publish settings are those the variables `env` describe."""
    server_settings = ServerSettings.for_data_dir(data_dir, **settings)
    tree = load_settings(env or {}, data_dir=data_dir)
    context = ServerContext.build(
        server_settings, runs=runs or run_settings(), llm=tree.llm, publish=tree.publish
    )
    with running_server(server_settings, context=context) as running:
        yield running


def question(i: int) -> str:
    """A question of its own words, so that no two are near-duplicates (dedup keeps them all)."""
    rng = random.Random(i)
    words = [_WORDS[rng.randrange(len(_WORDS))] + _WORDS[rng.randrange(len(_WORDS))] for _ in range(8)]
    return f"Question {i}: why does the {' '.join(words)} work?"


_WORDS = [
    "amber",
    "birch",
    "cobalt",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "iris",
    "jasper",
    "kelp",
    "lumen",
    "maple",
    "nectar",
    "onyx",
]


def qa_rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    """Rows with distinct questions, an id and an answer."""
    return [{"id": i, "question": question(i), "answer": f"Answer {i}."} for i in range(start, start + count)]


def upload(client: adaption.Adaption, path: Path, rows: list[dict[str, Any]], **options: Any) -> str:
    """Upload `rows` as the file `path` names and wait until they have been read; the dataset id."""
    done = client.datasets.upload_file(write_rows(path, rows), **options)
    wait_for(client, done.dataset_id)
    return done.dataset_id


#: Two csv files of three distinct questions, uploaded together as one dataset by `upload_batch`.
BATCH_PARTS = (
    b"id,question,answer\n1,Why is the sky blue today?,Scattering.\n",
    b"id,question,answer\n2,How do tides follow the moon?,Gravity.\n3,What makes bread rise?,Yeast.\n",
)


def upload_batch(client: adaption.Adaption, parts: tuple[bytes, ...] = BATCH_PARTS) -> Any:
    """Upload `parts` as one batch dataset through the SDK's batch flow and wait until it is read."""
    files = [
        {"file_name": f"part{i}.csv", "file_format": "csv", "file_size_bytes": len(p)}
        for i, p in enumerate(parts)
    ]
    started = client.datasets.upload.initiate_batch(name="batch", files=files)
    for upload_slot, data in zip(started.uploads, parts, strict=True):
        httpx.put(upload_slot.upload_url, content=data).raise_for_status()
    client.datasets.upload.complete_batch(
        dataset_id=started.dataset_id,
        files=[{**f, "s3_key": u.s3_key} for f, u in zip(files, started.uploads, strict=True)],
    )
    wait_for(client, started.dataset_id)
    return started


def wait_done(client: adaption.Adaption, dataset_id: str) -> Any:
    """`wait_for_completion` with short polls, so tests do not sleep for the SDK's 2 s default."""
    return client.datasets.wait_for_completion(
        dataset_id, initial_interval=0.05, max_interval=0.2, backoff_factor=1.5, timeout=60
    )


def loopback_reply(body: dict[str, Any]) -> str:
    """What the loopback model answers: a JSON value for a schema request, else the prompt echoed."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    if schema is not None:
        return json.dumps(fake_value(schema, "loop"))
    last = next((m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), {})
    return "[loop] " + " ".join(str(last.get("content", "")).split())[:120]


@contextmanager
def loopback_model(**options: Any) -> Iterator[FakeOpenAIServer]:
    """A `FakeOpenAIServer` on a thread of its own (answering `loopback_reply` unless told otherwise)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeOpenAIServer(**({"reply": loopback_reply} | options))
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def write_routes(path: Path, base_url: str, **route: Any) -> Path:
    """A routing file that sends ``loop/*`` models to an OpenAI-compatible server at `base_url`."""
    entry = {"provider": "openai", "base_url": base_url, "api_key_env": None, "model": "{suffix}"}
    entry |= {"json_schema": True, "input_price": 0.0, "output_price": 0.0} | route
    path.write_text(
        yaml.safe_dump({"default_model": LOOP_MODEL, "routes": {"loop/*": entry}}), encoding="utf-8"
    )
    return path


def tenant_key(database_url: str) -> str:
    """A new tenant's API key in the (migrated) database at `database_url`."""
    from datamill.services.tenants import TenantService
    from datamill.store import Store

    store = Store.from_url(database_url)
    try:
        store.migrate()
        return TenantService(store).create_key("team").key
    finally:
        store.close()


def process_env(tmp_path: Path, model: FakeOpenAIServer) -> dict[str, str]:
    """The environment of a `datamill serve` or `datamill worker` process answered by the loopback `model`."""
    return os.environ | {
        "DATAMILL_ROUTES": str(write_routes(tmp_path / "routes.yaml", model.base_url)),
        "DATAMILL_MODEL": LOOP_MODEL,
        "DATAMILL_RUN_EVALUATE": "0",
        "DATAMILL_WORKER_POLL_S": "0.2",
    }
