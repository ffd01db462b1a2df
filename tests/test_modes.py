"""Chat mode and the image column: mapping, per-turn regeneration, image parts sent to the model."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from datamill.core.mapping import parse_column_mapping
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.chat import ChatCompletion
from datamill.steps.images import load_image, media_type_of
from datamill.steps.mapping import MapColumns, parse_chat

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_chat_cell_as_json_text_maps_to_last_turns():
    mapping = parse_column_mapping({"chat": "conversation"})
    chat = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "reset my password"},
        {"role": "assistant", "content": "go to settings"},
    ]
    row = MapColumns(mapping).map_row({"conversation": json.dumps(chat), "id": 1})
    assert row["original_chat"] == chat
    assert row["original_prompt"] == "reset my password"
    assert row["original_completion"] == "go to settings"
    assert "conversation" not in row


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("not json", "not JSON"),
        ("[]", "non-empty list"),
        ('[{"role": "robot", "content": "x"}]', "role"),
        ('[{"role": "assistant", "content": "x"}]', "no user message"),
    ],
)
def test_bad_chat_cells_are_rejected_with_a_reason(cell: str, reason: str):
    with pytest.raises(RowRejected, match=reason):
        parse_chat(cell)


def test_bad_chat_row_goes_to_rejections_not_a_crash():
    step = MapColumns(parse_column_mapping({"chat": "c"}))
    ctx = StepContext()
    kept = step.process_batch(
        [{"c": "[]", "_row": 1}, {"c": '[{"role":"user","content":"q"}]', "_row": 2}], ctx
    )
    assert len(kept) == 1
    assert ctx.rejected[0].step == "column_mapping"


async def test_chat_completion_regenerates_each_assistant_turn_in_order():
    seen: list[list[str]] = []

    def responder(route: Route, request: ChatRequest) -> str:
        seen.append([m.content for m in request.messages[1:]])
        return f"answer {len(seen)}"

    fake = FakeProvider(responder=responder)
    async with Gateway(Routing.load(), providers={"fake": fake}) as gateway:
        step = ChatCompletion(gateway.model("fake/m"), blueprint="Be Acme.", token_range=(40, 150))
        chat = [
            {"role": "system", "content": "old system"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ]
        row = {"_chat": chat}
        assert len(step.requests_for(row)) == 2
        await step.process_row(row, StepContext())
    assert seen == [["old system", "q1"], ["old system", "q1", "answer 1", "q2"]]
    assert fake.calls[0].messages[0].content.startswith("Be Acme.")
    assert row["enhanced_chat"][0] == {"role": "system", "content": "old system"}
    assert [m["content"] for m in row["enhanced_chat"][1:]] == ["q1", "answer 1", "q2", "answer 2"]
    assert row["enhanced_prompt"] == "q2"
    assert row["enhanced_completion"] == "answer 2"


async def test_the_rows_own_system_message_reaches_every_turn_and_the_estimate():
    fake = FakeProvider(responder=lambda route, request: "Arr, matey.")
    chat = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Where is the treasure?"},
        {"role": "assistant", "content": "Under the palm tree."},
        {"role": "user", "content": "How deep?"},
        {"role": "assistant", "content": "Ten feet."},
    ]
    async with Gateway(Routing.load(), providers={"fake": fake}) as gateway:
        step = ChatCompletion(gateway.model("fake/m"), blueprint="Be brief.")
        row = {"_chat": chat}
        estimated = step.requests_for(row)
        await step.process_row(row, StepContext())
    assert len(fake.calls) == 2
    for request in (*fake.calls, *estimated):
        roles = [m.role for m in request.messages]
        assert roles[:2] == ["system", "system"]
        assert request.messages[0].content.startswith("Be brief.")
        assert request.messages[1].content == "You are a pirate."
        # The system message is never rendered as a turn of the conversation.
        assert all(m.content != "You are a pirate." for m in request.messages[2:])
        assert roles[2] == "user"
    assert [[m.role for m in r.messages] for r in estimated] == [
        [m.role for m in r.messages] for r in fake.calls
    ]
    assert row["enhanced_chat"][0] == {"role": "system", "content": "You are a pirate."}


def test_image_cells_of_every_kind(tmp_path: Path):
    (tmp_path / "cat.png").write_bytes(PNG)
    assert load_image("cat.png", tmp_path).data == PNG
    assert load_image(str(tmp_path / "cat.png"), None).media_type == "image/png"
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert load_image(uri, None).data == PNG
    assert load_image("https://example.test/a.jpg", None).url == "https://example.test/a.jpg"
    assert load_image({"bytes": PNG, "path": "x.png"}, None).data == PNG
    assert load_image(PNG, None).data == PNG
    assert load_image(None, None) is None
    assert media_type_of(b"\xff\xd8\xff\xe0") == "image/jpeg"


def test_unreadable_image_rejects_the_row(tmp_path: Path):
    with pytest.raises(RowRejected, match="cannot read image file"):
        load_image("missing.png", tmp_path)
    with pytest.raises(RowRejected, match="base64"):
        load_image("data:image/png;base64,@@@", None)


def test_image_column_is_read_not_rendered_as_context(tmp_path: Path):
    (tmp_path / "cat.png").write_bytes(PNG)
    mapping = parse_column_mapping({"prompt": "q", "image": "img", "context": ["caption"]})
    row = MapColumns(mapping, base_dir=tmp_path).map_row({"q": "what?", "img": "cat.png", "caption": "a cat"})
    assert row["_context"] == "caption: a cat"
    assert row["_images"][0].data == PNG
