"""extend_trajectories through the official SDK: a new dataset with the user's next turn per conversation,
written by the model through the run queue; estimates, idempotent replays, and the field-naming errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from runs_helpers import run_settings, runs_server, upload, wait_done
from server_helpers import fields_of

from conftest import RunningServer
from datamill.llm.simulator import serve_in_thread

CHATS = [
    [
        {"role": "user", "content": f"My cat Miso number {i} hates the new litter brand, what now?"},
        {"role": "assistant", "content": f"Mix the old brand with the new one over a week, cat {i}."},
    ]
    for i in range(5)
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("extend")) as running:
        yield running


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def chats(srv: RunningServer, tmp_path: Path) -> tuple[adaption.Adaption, str]:
    client = srv.client()
    rows = [{"id": i, "messages": json.dumps(chat)} for i, chat in enumerate(CHATS)]
    return client, upload(client, tmp_path / "chats.jsonl", rows)


def test_chat_conversations_get_the_users_next_turn_in_a_new_dataset(
    chats: tuple[adaption.Adaption, str],
) -> None:
    client, dataset_id = chats
    launched = client.datasets.extend_trajectories(dataset_id, column_mapping={"chat": "messages"})
    assert launched.estimate is False
    assert launched.run_id is not None
    assert launched.dataset_id is not None
    assert launched.dataset_id != dataset_id
    assert launched.estimated_credits_consumed > 0
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    derived = client.datasets.get(launched.dataset_id)
    assert (derived.kind, derived.source_dataset_id, derived.row_count) == ("extended", dataset_id, 5)
    rows = sorted(_rows(client, launched.dataset_id), key=lambda r: r["id"])
    for i, row in enumerate(rows):
        # The fake model echoes the start of its last user message: the conversation it was given.
        assert row["extended_prompt"].startswith("[fake] Conversation: User wrote: My cat Miso number")
        assert f"number {i} hates" in row["extended_prompt"]
        assert row["original_prompt"] == CHATS[i][0]["content"]
        assert row["original_completion"] == CHATS[i][1]["content"]
    assert client.datasets.get(dataset_id).row_count == 5  # the source is unchanged


def test_prompt_and_completion_conversations_with_max_rows(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    rows = [
        {"id": 0, "q": "Which planet is largest?", "a": "Jupiter."},
        {"id": 1, "q": json.dumps([{"role": "user", "content": "Name a prime."}]), "a": "Seven."},
        {"id": 2, "q": "What is 2+2?", "a": "Four."},
    ]
    dataset_id = upload(client, tmp_path / "qa.jsonl", rows)
    launched = client.datasets.extend_trajectories(
        dataset_id, column_mapping={"prompt": "q", "completion": "a"}, job_specification={"max_rows": 2}
    )
    assert launched.dataset_id is not None
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    out = _rows(client, launched.dataset_id)
    assert len(out) == 2
    assert all(r["extended_prompt"].startswith("[fake] Conversation: User wrote: ") for r in out)


def test_a_chat_ending_on_a_user_turn_is_rejected_with_the_reason(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    open_chat = [{"role": "user", "content": "Hello, can you help me?"}]
    rows = [{"id": 0, "messages": json.dumps(CHATS[0])}, {"id": 1, "messages": json.dumps(open_chat)}]
    dataset_id = upload(client, tmp_path / "mixed.jsonl", rows)
    launched = client.datasets.extend_trajectories(dataset_id, column_mapping={"chat": "messages"})
    assert launched.dataset_id is not None
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    assert [r["id"] for r in _rows(client, launched.dataset_id)] == [0]
    rejected = client.get(f"/api/v1/datasets/{launched.dataset_id}/rejected", cast_to=str, options={})
    assert "does not end on the assistant's reply" in rejected


def test_an_estimate_creates_nothing_and_a_replay_starts_nothing(
    chats: tuple[adaption.Adaption, str],
) -> None:
    client, dataset_id = chats
    before = [d.dataset_id for d in client.datasets.list()]
    quote = client.datasets.extend_trajectories(
        dataset_id, column_mapping={"chat": "messages"}, estimate=True
    )
    assert (quote.estimate, quote.run_id, quote.dataset_id) == (True, None, None)
    assert quote.estimated_credits_consumed > 0
    assert [d.dataset_id for d in client.datasets.list()] == before
    spec: Any = {"idempotency_key": "ext-1"}
    first = client.datasets.extend_trajectories(
        dataset_id, column_mapping={"chat": "messages"}, job_specification=spec
    )
    again = client.datasets.extend_trajectories(
        dataset_id, column_mapping={"chat": "messages"}, job_specification=spec
    )
    assert (again.run_id, again.dataset_id) == (first.run_id, first.dataset_id)
    assert (again.estimated_credits_consumed, again.estimated_minutes) == (0, 0)
    assert len(client.datasets.list().datasets) == len(before) + 1


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"chat": "messages", "prompt": "messages"}, "column_mapping.chat"),
        ({"prompt": "messages"}, "column_mapping.completion"),
        ({"chat": "messages", "context": ["id"]}, "column_mapping.context"),
        ({"chat": "nope"}, "column_mapping.chat"),
    ],
)
def test_bad_mappings_answer_400_naming_the_field(
    chats: tuple[adaption.Adaption, str], mapping: dict[str, Any], field: str
) -> None:
    client, dataset_id = chats
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.extend_trajectories(dataset_id, column_mapping=mapping)  # type: ignore[arg-type]
    assert field in fields_of(caught.value)


def test_a_launch_without_a_mapping_and_an_unknown_dataset(chats: tuple[adaption.Adaption, str]) -> None:
    client, dataset_id = chats
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.extend_trajectories(dataset_id)
    assert fields_of(caught.value) == ["column_mapping"]
    with pytest.raises(adaption.NotFoundError):
        client.datasets.extend_trajectories("ds_missing", column_mapping={"chat": "messages"})


def test_the_docs_block_runs(
    chats: tuple[adaption.Adaption, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = Path(__file__).parents[2] / "docs" / "server.md"
    section = re.search(
        r"^## Extend trajectories\n(.*?)^## ", doc.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )
    assert section is not None
    (block,) = re.findall(r"^```python\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    client, dataset_id = chats
    monkeypatch.chdir(tmp_path)
    exec(compile(block, str(doc), "exec"), {"client": client, "dataset_id": dataset_id})
    rows = [json.loads(line) for line in (tmp_path / "followups.jsonl").read_text().splitlines()]
    assert len(rows) == len(CHATS)
    assert all(row["extended_prompt"].startswith("[fake] Conversation:") for row in rows)


def test_refused_cut_and_empty_replies_never_become_turns(tmp_path: Path) -> None:
    """Against the provider simulator refusing, cutting and emptying a share of the answers: every kept row's
    next turn is a real answer of the model, and every other row is rejected with its reason."""
    rates = {"refusal_text": 0.2, "refusal_field": 0.1, "truncation": 0.1, "empty": 0.1, "think": 0.2}
    chats = [
        [
            {"role": "user", "content": f"Which train goes to village {i} on Sundays?"},
            {"role": "assistant", "content": f"The number {i} line, every two hours."},
        ]
        for i in range(12)
    ]
    with serve_in_thread(rates=rates, seed=3) as sim:
        routes = sim.write_routes(tmp_path / "routes.yaml")
        settings = run_settings(model="sim-openai/gpt", routes_path=routes, evaluate=False)
        with runs_server(tmp_path / "srv", settings) as srv:
            client = srv.client()
            rows = [{"id": i, "messages": json.dumps(chat)} for i, chat in enumerate(chats)]
            dataset_id = upload(client, tmp_path / "trains.jsonl", rows)
            launched = client.datasets.extend_trajectories(dataset_id, column_mapping={"chat": "messages"})
            assert launched.dataset_id is not None
            assert wait_done(client, launched.dataset_id).status == "succeeded"
            kept = _rows(client, launched.dataset_id)
            rejected = client.get(
                f"/api/v1/datasets/{launched.dataset_id}/rejected", cast_to=str, options={}
            ).splitlines()
        behaviours = [entry.behaviour for entry in sim.log]
    assert {"refusal_text", "truncation", "empty"} & set(behaviours)  # the quirks did happen
    assert len(kept) + len(rejected) == len(chats)
    assert kept  # most rows survive: refusals are retried within the gateway's budget
    for row in kept:
        text = row["extended_prompt"]
        assert text.startswith("[sim] Conversation: User wrote: Which train goes to village")
        assert "I can't help" not in text
        assert "<think>" not in text
    for line in rejected:
        record = json.loads(line)
        assert record["step"] == "extend_trajectory"
        assert any(word in record["reason"] for word in ("refused", "cut off", "empty", "length"))
