"""Imports by URL through the official SDK: the file is fetched by the safe fetcher, then read as an upload.

A loopback file server plays the remote host. ``localhost`` is allow-listed (``DATAMILL_FETCH_ALLOW``), so
``http://localhost:<port>/...`` may be fetched while ``http://127.0.0.1:<port>/...``, the same server by its
address, is an internal address that is not, and is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import adaption
import pytest
from runs_helpers import runs_server
from server_helpers import wait_for

from conftest import RunningServer

CSV = b"question,answer\n" + b"".join(f"q{i},a{i}\n".encode() for i in range(5))
FILES = {"/data/qa.csv": CSV, "/big.csv": b"question,answer\n" + b"q,a\n" * 2000}
LIMIT = 4096


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {"DATAMILL_FETCH_ALLOW": "localhost"}
    with runs_server(tmp_path_factory.mktemp("imports"), env=env, max_upload_bytes=LIMIT) as running:
        yield running


def _import(srv: RunningServer, url: str, **source: Any) -> tuple[adaption.Adaption, Any, Any]:
    client = srv.client()
    created = client.datasets.create(source={"url": url, **source})
    return client, created, wait_for(client, created.dataset_id)


def test_an_allowed_url_is_fetched_and_read_as_an_upload(srv: RunningServer, files: int) -> None:
    client, created, status = _import(srv, f"http://localhost:{files}/data/qa.csv")
    assert created.upload_instructions is None
    assert created.status == "pending"
    assert (status.status, status.error_data) == ("awaiting_input", None)
    dataset = client.datasets.get(created.dataset_id)
    assert (dataset.name, dataset.row_count) == ("qa.csv", 5)
    launched = client.datasets.adapt(
        created.dataset_id, column_mapping={"prompt": "question", "completion": "answer"}, estimate=True
    )
    assert launched.estimated_credits_consumed > 0


def test_a_raw_import_with_a_name_and_format_succeeds(srv: RunningServer, files: int) -> None:
    mapping = {"prompt": "question", "completion": "answer"}
    client, created, status = _import(
        srv,
        f"http://localhost:{files}/data/qa.csv",
        name="tickets",
        file_format="csv",
        processing_mode="raw",
        column_mapping=mapping,
    )
    assert status.status == "succeeded"
    dataset = client.datasets.get(created.dataset_id)
    assert (dataset.name, dataset.row_count) == ("tickets", 5)
    assert dataset.configured_column_mapping is not None
    assert dataset.configured_column_mapping.prompt == "question"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/data/qa.csv", "127.0.0.1 is 127.0.0.1, a loopback address"),
        ("http://localhost:{port}/big.csv", "the limit is 4,096"),
        ("http://localhost:{port}/missing.csv", "answered HTTP 404"),
    ],
)
def test_a_refused_or_failed_fetch_fails_the_dataset_with_the_reason(
    srv: RunningServer, files: int, url: str, reason: str
) -> None:
    client, created, status = _import(srv, url.format(port=files))
    assert created.status == "pending"
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0104"
    assert reason in status.error_data.message
    assert client.datasets.get(created.dataset_id).row_count is None


def test_an_import_left_behind_by_a_stop_is_fetched_on_the_next_start(tmp_path: Path, files: int) -> None:
    data = tmp_path / "data"
    env = {"DATAMILL_FETCH_ALLOW": "localhost"}
    with runs_server(data, env=env) as first:
        first.context.imports.close()  # as if the server stopped before the fetch ran
        client = first.client("t-restart")
        created = client.datasets.create(source={"url": f"http://localhost:{files}/data/qa.csv"})
        assert client.datasets.get_status(created.dataset_id).status == "pending"
    with runs_server(data, env=env) as second:
        again = second.client(key=client.api_key)
        assert wait_for(again, created.dataset_id).status == "awaiting_input"
        assert again.datasets.get(created.dataset_id).row_count == 5
