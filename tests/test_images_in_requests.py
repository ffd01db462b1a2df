"""An image column reaches the model: each step that answers, rewrites or reviews a row sends its image.

The run goes over real HTTP to a loopback OpenAI-compatible server, which records each request body.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.core.run_options import RunOptions
from datamill.llm.cache import InMemoryResponseCache, cache_key
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ImagePart
from datamill.pipelines.plan import plan_adaptation
from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async
from datamill.services.settings.entry import Settings
from datamill.steps.base import RowRejected
from datamill.steps.chat import ChatCompletion
from datamill.steps.completion import GenerateCompletion
from datamill.steps.images import load_image
from datamill.steps.preference import PreferencePairs
from datamill.steps.safety import SafetyReview

CAT = b"\x89PNG\r\n\x1a\n" + b"cat" * 8
DOG = b"\x89PNG\r\n\x1a\n" + b"dog" * 8
QUESTION = "What is in this picture?"
NONE = {c: 1 for c in ("violence", "self_harm", "harassment", "hate", "sexual")}


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def answer(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    if system.startswith("You are a content-safety reviewer"):
        return json.dumps({"rationale": "a picture", "prompt": NONE, "response": NONE})
    if system.startswith("You rewrite user requests"):
        return "What does this picture show?"
    if system.startswith("You think through a request"):
        return "1. Look at the picture.\n2. Name the animal.\nFinal answer: An animal."
    return "An animal."


def routing(base_url: str, *, vision: bool = True) -> Routing:
    route = {"provider": "openai", "base_url": base_url, "model": "{suffix}", "vision": vision}
    return Routing.from_dict({"routes": {"acme/*": route}})


def image_urls(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [part["image_url"]["url"] for part in content if part["type"] == "image_url"]


BODY = {
    "column_mapping": {"prompt": "question", "image": "picture"},
    "recipe_specification": {
        "recipes": {"deduplication": True, "prompt_rephrase": True, "reasoning_traces": True}
    },
    "brand_controls": {"safety_categories": ["violence"]},
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    (tmp_path / "cat.png").write_bytes(CAT)
    path = tmp_path / "pictures.csv"
    rows = [f"1,{QUESTION},cat.png", f'2,{QUESTION},"{data_uri(DOG)}"', f"3,{QUESTION},cat.png"]
    path.write_text("id,question,picture\n" + "\n".join(rows) + "\n")
    return path


async def test_every_model_step_sends_the_rows_image_over_http(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    job = AdaptJob(source, out, model="acme/seeing", options=RunOptions(evaluate=False, rephrase_check=False))
    settings = Settings(data_dir=tmp_path / "home")
    async with (
        FakeOpenAIServer(reply=answer) as server,
        Gateway(routing(server.base_url), cache=InMemoryResponseCache()) as gateway,
    ):
        summary = await adapt_file_async(job, BODY, settings=settings, gateway=gateway)

    # Row 3 repeats row 1's question and image; row 2 asks the same about another image and is kept.
    assert summary.rows_out == 2
    rejected = orjson.loads((tmp_path / "out.rejected.jsonl").read_bytes().splitlines()[0])
    assert (rejected["row_number"], rejected["reason"]) == (3, "exact duplicate of row 1")
    # Four steps per row, and the same text with another image is never answered from the cache.
    assert server.count == 8
    assert summary.cache_hits == 0
    seen: dict[str, list[str]] = {}
    for body in server.requests:
        user = body["messages"][-1]
        assert user["role"] == "user"
        urls = image_urls(user)
        assert len(urls) == 1, body
        assert all(not image_urls(m) for m in body["messages"][:-1])
        seen.setdefault(urls[0], []).append(body["messages"][0]["content"][:20])
    assert set(seen) == {data_uri(CAT), data_uri(DOG)}
    assert all(len(steps) == 4 for steps in seen.values())
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["enhanced_completion"] for r in rows] == ["An animal.", "An animal."]
    assert all(not any(key.startswith("_") for key in r) for r in rows)


async def test_a_route_without_vision_is_refused_before_any_call(source: Path, tmp_path: Path) -> None:
    job = AdaptJob(source, tmp_path / "out.jsonl", model="acme/blind", options=RunOptions(evaluate=False))
    settings = Settings(data_dir=tmp_path / "home")
    async with (
        FakeOpenAIServer(reply=answer) as server,
        Gateway(routing(server.base_url, vision=False)) as gateway,
    ):
        with pytest.raises(ValidationError, match="cannot read images") as caught:
            await adapt_file_async(job, BODY, settings=settings, gateway=gateway)
    assert caught.value.issues[0].field == "column_mapping.image"
    assert server.count == 0


async def test_the_cache_key_follows_the_image() -> None:
    async with Gateway(Routing.load(), providers={"fake": FakeProvider()}) as gateway:
        step = GenerateCompletion(gateway.model("fake/seeing"))
        route = gateway.model("fake/seeing").route
        keys = {
            cache_key(route, step.requests_for({"original_prompt": QUESTION, "_images": images})[0])
            for images in ([ImagePart(data=CAT)], [ImagePart(data=DOG)], [])
        }
    assert len(keys) == 3


async def test_judges_without_vision_review_the_text_and_chats_show_the_image_first() -> None:
    routes = Routing.from_dict(
        {"routes": {"seeing/*": {"provider": "fake", "vision": True}, "blind/*": {"provider": "fake"}}}
    )
    image = ImagePart(data=CAT)
    row = {"_row": 1, "original_prompt": QUESTION, "enhanced_completion": "A cat.", "_images": [image]}
    async with Gateway(routes, providers={"fake": FakeProvider()}) as gateway:
        seeing, blind = gateway.model("seeing/m"), gateway.model("blind/m")
        requests = PreferencePairs(seeing, judge=blind).requests_for(row)
        written = [r for r in requests if r.json_schema is None]
        judged = [r for r in requests if r.json_schema is not None]
        assert written
        assert all(r.messages[-1].images == (image,) for r in written)
        assert judged
        assert all(not m.images for r in judged for m in r.messages)
        seen = PreferencePairs(seeing, judge=seeing).requests_for(row)
        assert all(r.messages[-1].images == (image,) for r in seen)
        assert SafetyReview(seeing).requests_for(row)[0].messages[-1].images == (image,)
        assert all(not m.images for m in SafetyReview(blind).requests_for(row)[0].messages)

        chat = [
            {"role": "user", "content": "What is this?"},
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "What colour?"},
        ]
        requests = ChatCompletion(seeing).requests_for({"_chat": chat, "_images": [image]})
        for request in requests:
            users = [m for m in request.messages if m.role == "user"]
            assert users[0].images == (image,)
            assert all(not m.images for m in users[1:])


async def test_text_similarity_dedups_are_left_out_with_an_image_column() -> None:
    async with Gateway(Routing.load(), providers={"fake": FakeProvider()}) as gateway:
        request = parse_adapt_request(BODY)
        plan = plan_adaptation(request, gateway.model("fake/seeing"), total_rows=3)
    assert plan.step_names[:2] == ["column_mapping", "deduplication"]
    assert "near_deduplication" not in plan.step_names


def test_file_paths_are_read_only_where_local_files_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(CAT)
    assert load_image("cat.png", tmp_path) == ImagePart(data=CAT, media_type="image/png")
    for cell in ("cat.png", str(tmp_path / "cat.png"), {"bytes": None, "path": "cat.png"}):
        with pytest.raises(RowRejected, match="must hold a URL, a data: URI or bytes on the server"):
            load_image(cell, tmp_path, local_files=False)
    assert load_image(data_uri(DOG), None, local_files=False) == ImagePart(data=DOG, media_type="image/png")
    assert load_image({"bytes": CAT}, None, local_files=False) == ImagePart(data=CAT, media_type="image/png")
    url = "https://example.test/cat.png"
    assert load_image(url, None, local_files=False) == ImagePart(url=url, media_type="image/png")
