"""What every request and response passes through: bodies with lone surrogates or over the size cap are
refused before any route (or key lookup) sees them, whatever their Content-Type, every response carries the
security headers, and csv downloads write spreadsheet formulas as text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runs_helpers import MAPPING, runs_server, upload, wait_done
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from conftest import RunningServer
from datamill.server.request_guard import RequestGuard
from datamill.services.datasets.catalog import DatasetService

LONE = '"\\ud800x"'  # valid JSON, but no text: an unpaired surrogate
PAIR = '"\\ud83d\\ude00.csv"'  # an escaped emoji: a valid pair


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("guard")) as running:
        yield running


def _post(srv: RunningServer, path: str, raw: str, key: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(srv.base_url + path, content=raw.encode(), headers=headers)


def test_a_lone_surrogate_in_an_adaption_body_is_a_400_naming_the_field(srv: RunningServer) -> None:
    answer = _post(srv, "/api/v1/datasets", '{"source": {"name": ' + LONE + "}}", srv.new_key())
    assert answer.status_code == 400
    body = answer.json()
    assert body["statusCode"] == 400
    assert body["errors"][0]["field"] == "source.name"
    assert "surrogate" in body["message"]


def test_a_lone_surrogate_in_a_dataframer_body_is_a_400_in_its_shape(srv: RunningServer) -> None:
    raw = '{"name": "spec", "tags": ["ok", ' + LONE + "]}"
    answer = _post(srv, "/api/dataframer/specs/", raw, srv.new_key())
    assert answer.status_code == 400
    body = answer.json()
    assert body["details"][0]["field"] == "tags[1]"
    assert "surrogate" in body["error"]


def test_a_valid_surrogate_pair_reaches_the_route(srv: RunningServer) -> None:
    answer = _post(srv, "/api/v1/datasets", '{"source": {"name": ' + PAIR + "}}", srv.new_key())
    assert answer.status_code not in (400, 500)
    assert "surrogate" not in answer.text


def test_the_guard_checks_the_body_before_the_key(srv: RunningServer) -> None:
    answer = _post(srv, "/api/v1/datasets", '{"source": {"name": ' + LONE + "}}")  # no key at all
    assert answer.status_code == 400


@pytest.mark.parametrize("content_type", ["application/vnd.api+json; charset=utf-8", "application/json; x=1"])
def test_a_lone_surrogate_is_refused_whatever_json_media_type_carries_it(
    srv: RunningServer, content_type: str
) -> None:
    # The routes parse any application/*+json body as JSON, parameters and all.
    raw = '{"name": "judge", "rubric": ' + LONE + "}"
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {srv.new_key()}"}
    answer = httpx.post(srv.base_url + "/api/dataframer/judges/", content=raw.encode(), headers=headers)
    assert answer.status_code == 400
    assert answer.json()["details"][0]["field"] == "rubric"


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", None])
def test_a_large_body_of_any_type_is_refused_before_the_key_is_looked_up(
    srv: RunningServer, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    chunk = b"x" * (1 << 20)
    body = iter([chunk] * 17)  # 17 MiB, streamed: over the 16 MiB cap
    answer = httpx.post(srv.base_url + "/api/v1/datasets", content=body, headers=headers, timeout=60)
    assert answer.status_code == 413  # not the 401 of a body read whole before the key check
    assert answer.json()["statusCode"] == 413


def test_every_response_carries_the_security_headers(srv: RunningServer) -> None:
    for answer in (
        httpx.get(srv.base_url + "/healthz"),
        httpx.get(srv.base_url + "/api/v1/datasets"),  # a 401
        httpx.get(srv.base_url + "/"),  # the web app
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_a_500_for_a_bug_carries_the_security_headers(
    srv: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug's 500 is answered outside every middleware, by the error handler.
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(DatasetService, "get", broken)
    headers = {"Authorization": f"Bearer {srv.new_key()}"}
    answer = httpx.get(srv.base_url + "/api/v1/datasets/ds_any", headers=headers)
    assert answer.status_code == 500
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"


def _echo_app(limit: int) -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"got": len(await request.body())})

    return Starlette(routes=[Route("/api/v1/x", echo, methods=["POST"])], middleware=[])


def test_a_json_body_over_the_cap_is_a_413_and_a_smaller_one_passes_whole() -> None:
    app = RequestGuard(_echo_app(100), max_json_bytes=100)
    with TestClient(app) as client:
        small = json.dumps({"a": "x" * 50})
        ok = client.post("/api/v1/x", content=small, headers={"content-type": "application/json"})
        assert ok.json() == {"got": len(small)}
        big = client.post(
            "/api/v1/x", content=json.dumps({"a": "x" * 200}), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413
        assert big.json()["statusCode"] == 413
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/x+json; a=b"):
            other = client.post("/api/v1/x", content=b"x" * 200, headers={"content-type": content_type})
            assert other.status_code == 413
        assert client.post("/api/v1/x", content=b"x" * 90).json() == {"got": 90}  # no Content-Type


def test_a_multipart_form_streams_to_the_route_under_its_own_cap() -> None:
    app = RequestGuard(_echo_app(100), max_json_bytes=100, max_form_bytes=1000)
    form = {"content-type": "multipart/form-data; boundary=b"}
    with TestClient(app) as client:
        assert client.post("/api/v1/x", content=b"y" * 900, headers=form).json() == {"got": 900}
        declared = client.post("/api/v1/x", content=b"y" * 1001, headers=form)
        assert declared.status_code == 413
        # Sent in chunks without a length: refused once more than the cap has arrived.
        chunked = client.post("/api/v1/x", content=iter([b"y" * 400] * 3), headers=form)
        assert chunked.status_code == 413
        assert chunked.json()["statusCode"] == 413


def test_csv_downloads_write_formulas_as_text(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    rows = [
        {"question": '=HYPERLINK("http://evil.example","click")', "answer": "@SUM(A1:A9)"},
        {"question": "+cmd|' /C calc'!A0", "answer": "-2"},
    ]
    dataset_id = upload(client, tmp_path / "formulas.jsonl", rows)
    client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(client, dataset_id).status == "succeeded"
    cells = {
        row["original_prompt"]: row["original_completion"]
        for row in csv.DictReader(io.StringIO(client.datasets.download(dataset_id).text()))
    }
    assert cells == {
        '\'=HYPERLINK("http://evil.example","click")': "'@SUM(A1:A9)",
        "'+cmd|' /C calc'!A0": "-2",  # a plain number is left as it is
    }
    jsonl = client.datasets.download(dataset_id, file_format="jsonl").text()
    prompts = {json.loads(line)["original_prompt"] for line in jsonl.splitlines()}
    assert '=HYPERLINK("http://evil.example","click")' in prompts  # only csv is neutralized
