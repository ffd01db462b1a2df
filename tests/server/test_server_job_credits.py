"""Every paid Adaption job a tenant can launch is refused with 402, nothing created, when the balance does not
cover its reservation: translation, localization and expansion, trajectory extension, invented datasets and
AutoScientist runs (adaptation, augmentation, custom evaluations and responses have their own tests)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import adaption
import pytest
from runs_helpers import MAPPING, qa_rows, runs_server, upload, wait_done

from conftest import RunningServer

CHATS = [
    [{"role": "user", "content": f"Question number {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]
    for i in range(4)
]


@pytest.fixture(scope="module")
def broke(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, adaption.Adaption, str, str]]:
    """A server, a tenant with no credits, one of its finished datasets and one of chats."""
    tmp = tmp_path_factory.mktemp("job-credits")
    with runs_server(tmp / "server") as srv:
        key = srv.context.tenants.create_key(f"broke-{secrets.token_hex(3)}", credits=0.0).key
        client = adaption.Adaption(api_key=key, base_url=srv.base_url, max_retries=0)
        qa = upload(client, tmp / "qa.csv", qa_rows(6), processing_mode="raw", column_mapping=MAPPING)
        wait_done(client, qa)
        chats = [{"id": i, "messages": json.dumps(chat)} for i, chat in enumerate(CHATS)]
        chat = upload(client, tmp / "chats.jsonl", chats)
        yield srv, client, qa, chat
        client.close()


LAUNCHES: dict[str, Callable[[adaption.Adaption, str, str], Any]] = {
    "translate": lambda c, qa, _: c.datasets.translate(qa, languages=["de"], sample_rate=1.0),
    "localize": lambda c, qa, _: c.datasets.localize(
        qa, pairs=[{"country": "FR", "language": "fr"}], sample_rate=1.0
    ),
    "expand": lambda c, qa, _: c.datasets.expand(qa, rows=6, languages=["de"]),
    "extend_trajectories": lambda c, _, chat: c.datasets.extend_trajectories(
        chat, column_mapping={"chat": "messages"}
    ),
    "invent": lambda c, _qa, _chat: c.datasets.invent(rows=6, domains=["finance"], name="invented"),
    "autoscientist": lambda c, qa, _: c.autoscientist.create(dataset_id=qa, max_iterations=2),
}


@pytest.mark.parametrize("kind", sorted(LAUNCHES))
def test_a_tenant_without_credits_cannot_launch(
    broke: tuple[RunningServer, adaption.Adaption, str, str], kind: str
) -> None:
    _srv, client, qa, chat = broke
    datasets_before = [d.dataset_id for d in client.datasets.list()]
    with pytest.raises(adaption.APIStatusError) as caught:
        LAUNCHES[kind](client, qa, chat)
    assert caught.value.status_code == 402
    assert "insufficient credits" in str(caught.value.body)
    assert [d.dataset_id for d in client.datasets.list()] == datasets_before  # nothing created
    if kind == "autoscientist":
        assert list(client.autoscientist.list()) == []
