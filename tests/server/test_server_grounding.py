"""hallucination_mitigation through the official SDK: grounding on what the operator configures.

A search API on loopback (the `HttpSearch` wire shape) answers from a small corpus; an adaptation that asks
for grounding writes each completion with the passages it found, the search API's allowed address comes
from the fetch policy, and a server with no grounding source refuses the request naming the field."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import adaption
import fsspec
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from server_helpers import fields_of

from conftest import RunningServer

GROUNDING: Any = {"hallucination_mitigation": True}
MAP: Any = MAPPING
CORPUS = {
    "https://help.example.com/amber": "Amber birch cobalt products are covered by a two year warranty.",
    "https://help.example.com/onyx": "Onyx kelp maple devices reset by holding the power button.",
}


class SearchApi:
    """A loopback search API: ``POST /search {"query", "k"}`` → the corpus entries sharing a word.

    Each result carries the relevance the API vouches for (without one, grounding measures its own).
    """

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.queries.append(body)
                api.auth.append(self.headers.get("Authorization"))
                words = {w.strip("?.,:").lower() for w in str(body["query"]).split()}
                results = [
                    {"source": url, "text": text, "score": 2.0, "relevance": 1.0}
                    for url, text in CORPUS.items()
                    if words & {w.strip(".").lower() for w in text.split()}
                ]
                data = json.dumps({"results": results[: body["k"]]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/search"


@contextmanager
def search_api() -> Iterator[SearchApi]:
    api = SearchApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


QUESTIONS = [
    "How long is the warranty on amber products?",
    "How do I reset an onyx device?",
    "Why is sky blue at noon?",
    "Does the amber warranty cover onyx devices?",
]


def _expected(question: str) -> set[str]:
    words = {w.strip("?.,:").lower() for w in question.split()}
    return {url for url, text in CORPUS.items() if words & {w.strip(".").lower() for w in text.split()}}


def _grounded_run(srv: RunningServer, tmp_path: Path) -> tuple[adaption.Adaption, str]:
    client = srv.client()
    rows = [{"id": i, "question": q, "answer": f"Answer {i}."} for i, q in enumerate(QUESTIONS)]
    dataset_id = upload(client, tmp_path / "qa.csv", rows)
    client.datasets.adapt(dataset_id, column_mapping=MAP, brand_controls=GROUNDING)
    return client, dataset_id


def test_adaptation_grounds_on_the_operators_search_api(tmp_path: Path) -> None:
    with search_api() as api:
        runs = run_settings(
            grounding_search_url=api.url, grounding_search_key="k-123", fetch_allow=("127.0.0.1",)
        )
        with runs_server(tmp_path / "srv", runs) as srv:
            client, dataset_id = _grounded_run(srv, tmp_path)
            assert wait_done(client, dataset_id).status == "succeeded"
            rows = _rows(client, dataset_id)
    assert len(api.queries) == 4  # one search per row
    assert set(api.auth) == {"Bearer k-123"}
    by_question = {row["original_prompt"]: row for row in rows}
    assert set(by_question) == set(QUESTIONS)
    for question, row in by_question.items():
        expected = _expected(question)
        assert {s["source"] for s in row["grounding_sources"]} == expected
        assert row["grounded"] is bool(expected)
    assert [by_question[q]["grounded"] for q in QUESTIONS] == [True, True, False, True]


def test_the_search_api_is_reached_only_where_the_fetch_policy_allows(tmp_path: Path) -> None:
    with (
        search_api() as api,
        runs_server(tmp_path / "srv", run_settings(grounding_search_url=api.url)) as srv,
    ):
        client, dataset_id = _grounded_run(srv, tmp_path)
        done = wait_done(client, dataset_id)
    assert done.status == "failed"
    assert api.queries == []  # refused before any request left
    assert done.error_data is not None
    assert "search API" in str(done.error_data.message)


def test_grounding_docs_configured_by_the_operator(tmp_path: Path) -> None:
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "warranty.md").write_text(
        "Amber products carry a warranty of two years, from the day of purchase."
    )
    with runs_server(tmp_path / "srv", run_settings(grounding_docs=(str(docs),))) as srv:
        client, dataset_id = _grounded_run(srv, tmp_path)
        assert wait_done(client, dataset_id).status == "succeeded"
        rows = _rows(client, dataset_id)
    by_question = {row["original_prompt"]: row for row in rows}
    assert [s["source"] for s in by_question[QUESTIONS[0]]["grounding_sources"]] == ["kb/warranty.md"]
    assert by_question[QUESTIONS[2]]["grounded"] is False


def test_grounding_docs_at_an_fsspec_url(tmp_path: Path) -> None:
    url = f"memory://kb-{uuid.uuid4().hex[:8]}"
    fsspec.filesystem("memory").pipe(f"{url}/warranty.md", b"Amber products carry a warranty of two years.")
    with runs_server(tmp_path / "srv", run_settings(grounding_docs=(url,))) as srv:
        client, dataset_id = _grounded_run(srv, tmp_path)
        assert wait_done(client, dataset_id).status == "succeeded"
        rows = _rows(client, dataset_id)
    by_question = {row["original_prompt"]: row for row in rows}
    sources = [s["source"] for s in by_question[QUESTIONS[0]]["grounding_sources"]]
    assert sources == [f"{url.removeprefix('memory://')}/warranty.md"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("plain")) as running:
        yield running


def test_without_a_grounding_source_the_request_is_refused_naming_the_field(
    plain: RunningServer, tmp_path: Path
) -> None:
    client = plain.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(2))
    for estimate in (True, False):
        with pytest.raises(adaption.BadRequestError) as caught:
            client.datasets.adapt(dataset_id, column_mapping=MAP, brand_controls=GROUNDING, estimate=estimate)
        assert fields_of(caught.value) == ["brand_controls.hallucination_mitigation"]
        assert "DATAMILL_GROUNDING_SEARCH_URL" in str(caught.value.body)
    assert client.datasets.get(dataset_id).status != "running"  # nothing was started
