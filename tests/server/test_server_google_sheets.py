"""Google Sheets imports through the official SDK: the sheet URL is mapped to its CSV export, fetched from a
loopback server that mimics docs.google.com (``google_sheets_url`` points the host at it), and read."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import adaption
import pytest
from runs_helpers import runs_server
from server_helpers import fields_of, wait_for

from conftest import RunningServer

PUBLIC = "1AbCdEfGhIjKlMnOpQrStUv"
PRIVATE = "9ZyXwVuTsRqPoNmLkJiHgFe"
TABS = {
    "0": ("Questions", b"question,answer\nq1,a1\nq2,a2\n"),
    "123": ("More data", b"question,answer\nq3,a3\nq4,a4\nq5,a5\n"),
}


class _Google(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Google.seen.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path.startswith(f"/spreadsheets/d/{PRIVATE}/"):
            self.send_response(302)
            self.send_header("Location", "/ServiceLogin?continue=sheet")
            self.end_headers()
            return
        if parts.path == "/ServiceLogin":
            return self._send(b"<html><body>Sign in</body></html>", "text/html; charset=utf-8")
        if parts.path == f"/spreadsheets/d/{PUBLIC}/export" and query.get("format") == ["csv"]:
            return self._send(TABS[query.get("gid", ["0"])[0]][1], "text/csv")
        if parts.path == f"/spreadsheets/d/{PUBLIC}/gviz/tq" and query.get("tqx") == ["out:csv"]:
            by_name = {name: body for name, body in TABS.values()}
            return self._send(by_name[query["sheet"][0]], "text/csv")
        self.send_error(404)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Google)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    google = f"http://127.0.0.1:{httpd.server_address[1]}"
    env = {"DATAMILL_FETCH_ALLOW": "127.0.0.1"}
    try:
        with runs_server(tmp_path_factory.mktemp("sheets"), env=env, google_sheets_url=google) as running:
            yield running
    finally:
        httpd.shutdown()
        httpd.server_close()


def _import(srv: RunningServer, **source: Any) -> tuple[adaption.Adaption, Any]:
    client = srv.client()
    created = client.datasets.create(source=source)  # type: ignore[arg-type]
    assert created.upload_instructions is None
    return client, wait_for(client, created.dataset_id)


@pytest.mark.parametrize(
    ("url", "extra", "rows", "export"),
    [
        (f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit", {}, 2, "export?format=csv"),
        (f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit#gid=123", {}, 3, "gid=123"),
        (f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit?gid=123#gid=123", {}, 3, "gid=123"),
        (
            f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit",
            {"sheet_names": ["More data"], "access": "public"},
            3,
            "sheet=More%20data",
        ),
        (
            f"https://docs.google.com/spreadsheets/d/{PUBLIC}",
            {"sheet_name": "Questions"},
            2,
            "sheet=Questions",
        ),
    ],
)
def test_a_public_sheet_tab_is_imported_from_its_csv_export(
    srv: RunningServer, url: str, extra: dict[str, Any], rows: int, export: str
) -> None:
    before = len(_Google.seen)
    client, status = _import(srv, url=url, **extra)
    assert (status.status, status.error_data) == ("awaiting_input", None)
    dataset = client.datasets.get(status.dataset_id)
    assert dataset.row_count == rows
    assert any(export in path for path in _Google.seen[before:])
    quote = client.datasets.adapt(
        status.dataset_id, column_mapping={"prompt": "question", "completion": "answer"}, estimate=True
    )
    assert quote.estimated_credits_consumed > 0


def test_a_raw_import_with_a_name(srv: RunningServer) -> None:
    url = f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit#gid=0"
    mapping = {"prompt": "question", "completion": "answer"}
    client, status = _import(srv, url=url, name="faq", processing_mode="raw", column_mapping=mapping)
    dataset = client.datasets.get(status.dataset_id)
    assert (dataset.name, dataset.row_count, status.status) == ("faq", 2, "succeeded")


def test_a_private_sheet_fails_with_the_reason(srv: RunningServer) -> None:
    url = f"https://docs.google.com/spreadsheets/d/{PRIVATE}/edit"
    _client, status = _import(srv, url=url)
    assert status.status == "failed"
    assert status.error_data is not None
    assert "Anyone with the link" in str(status.error_data.message)


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"access": "oauth"}, "source.access"),
        ({"sheet_names": ["A", "B"]}, "source.sheet_names"),
        ({"file_format": "parquet"}, "source.file_format"),
        ({"url": "https://docs.google.com/document/d/abc/edit"}, "source.url"),
    ],
)
def test_what_cannot_be_imported_answers_400_naming_the_field(
    srv: RunningServer, source: dict[str, Any], field: str
) -> None:
    body = {"url": f"https://docs.google.com/spreadsheets/d/{PUBLIC}/edit"} | source
    with pytest.raises(adaption.BadRequestError) as caught:
        srv.client().datasets.create(source=body)  # type: ignore[arg-type]
    assert fields_of(caught.value) == [field]


def test_the_docs_block_runs(srv: RunningServer) -> None:
    doc = Path(__file__).parents[2] / "docs" / "server.md"
    text = doc.read_text(encoding="utf-8")
    start = text.index("**Google Sheets.**")
    (block,) = re.findall(r"^```python\n(.*?)^```", text[start : text.index("\n## ", start)], re.M | re.S)
    client = srv.client()
    names: dict[str, Any] = {"client": client}
    exec(compile(block.replace("1AbC...", PUBLIC).replace("Answers", "More data"), str(doc), "exec"), names)
    for made, rows in ((names["tab"], 3), (names["named"], 3)):
        assert wait_for(client, made.dataset_id).status == "awaiting_input"
        assert client.datasets.get(made.dataset_id).row_count == rows
