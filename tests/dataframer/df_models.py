"""Scripted OpenAI-compatible models for the Dataframer run tests, each on a loopback port of its own.

`gate_reply` writes drafts that name their request seed and has the conformance judge reject every draft
whose seed is a multiple of `FAIL_EVERY`, so a share of candidates fails the gate and is regenerated.
`loopback_models` serves replies on a thread's event loop; `scripted_routes` is a routing file sending the
SDK's model names to the shipped fake model except those given, which go to a loopback server.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from conftest import DATAFRAMER_MODELS, FAKE_MODEL
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.llm.providers.fake import fake_value

FAIL_EVERY = 3


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def gate_reply(body: dict[str, Any]) -> str:
    """Drafts and revisions name their request seed and the values asked for; the blind judge reads the
    values back from the sample and finds a broken rule when the seed is a multiple of 3."""
    schema = _schema(body)
    prompt = _prompt(body)
    if schema is not None and "conforms" in schema.get("properties", {}):
        seeds = [int(s) for s in re.findall(r"draft-seed-(\d+)", prompt)]
        bad = bool(seeds) and seeds[-1] % FAIL_EVERY == 0
        read = dict(re.findall(r"\[\[(.+?)=(.+?)\]\]", prompt))
        violations = ["off-spec tone"] if bad else []
        verdict = {"rationale": "read", "properties": read, "violations": violations, "conforms": not bad}
        return json.dumps(verdict)
    if schema is not None:
        return json.dumps(fake_value(schema, "gate"))
    asked = "".join(
        f" [[{k}={v}]]" for k, v in re.findall(r"^- (.+?): (.+)$", prompt.split("must have:")[-1], re.M)
    )
    return f"A polite support email.{asked} draft-seed-{body.get('seed', 0)}"


def plain_reply(body: dict[str, Any]) -> str:
    schema = _schema(body)
    if schema is not None:
        return json.dumps(fake_value(schema, "plain"))
    return f"Hello from the slow model, seed {body.get('seed', 0)}"


@contextmanager
def loopback_models(*servers: FakeOpenAIServer) -> Iterator[tuple[FakeOpenAIServer, ...]]:
    """Start `servers` on one event loop in a thread; stop them afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for server in servers:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield servers
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def scripted_routes(path: Path, loopback: dict[str, str]) -> Path:
    """Every SDK model name to the fake model, except `loopback`'s names, each to its server's URL."""
    fake = {"provider": "fake", "model": "{suffix}", "api_key_env": None, "base_url_env": None}
    routes: dict[str, Any] = {
        name: fake | {"input_price": 1.0, "output_price": 2.0} for name in DATAFRAMER_MODELS
    }
    for name, base_url in loopback.items():
        routes[name] = {
            "provider": "openai",
            "base_url": base_url,
            "api_key_env": None,
            "model": "{suffix}",
            "input_price": 1.0,
            "output_price": 2.0,
        }
    path.write_text(yaml.safe_dump({"default_model": FAKE_MODEL, "routes": routes}), encoding="utf-8")
    return path
