"""invent, extend_trajectories and a document upload through the official SDK on a PostgreSQL server: the
job queue, the idempotency records and the derived datasets behave as on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import fresh_database, postgres_url
from runs_helpers import runs_server, upload, wait_done
from server_helpers import wait_for
from test_server_documents import make_pdf, upload_document


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(postgres_url()) as url:
        yield url


def test_invent_extend_and_documents_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    with runs_server(tmp_path / "data", database_url=pg_url) as server:
        assert server.context.store.engine.dialect.name == "postgresql"
        client = server.client()
        made = client.datasets.invent(rows=1, subdomains=["finance.tax"], idempotency_key="pg-1")
        again = client.datasets.invent(rows=1, subdomains=["finance.tax"], idempotency_key="pg-1")
        assert made.id is not None
        assert (again.id, again.estimated_credits) == (made.id, 0)
        assert wait_done(client, made.id).status == "succeeded"
        assert client.datasets.get(made.id).row_count == 1

        chat = [
            {"role": "user", "content": "Plan a picnic"},
            {"role": "assistant", "content": "Bring fruit."},
        ]
        dataset_id = upload(client, tmp_path / "chats.jsonl", [{"id": 1, "messages": json.dumps(chat)}])
        extended = client.datasets.extend_trajectories(dataset_id, column_mapping={"chat": "messages"})
        assert extended.dataset_id is not None
        assert wait_done(client, extended.dataset_id).status == "succeeded"
        rows = client.datasets.download(extended.dataset_id, file_format="jsonl").text().splitlines()
        extended_prompt = json.loads(rows[0])["extended_prompt"]
        assert extended_prompt.startswith("[fake] Conversation: User wrote: Plan a picnic")

        status = upload_document(client, "manual.pdf", make_pdf(["One.", "Two."]))
        assert wait_for(client, status.dataset_id).status == "awaiting_input"
        assert client.datasets.get(status.dataset_id).row_count == 2
